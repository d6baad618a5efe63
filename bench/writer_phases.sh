#!/usr/bin/env bash
# bench/writer_phases.sh: where the writer's time goes inside PostgreSQL, without the daemon.
#
#   bench/writer_phases.sh [BATCH]      # after bench/run.sh (uses its pm_bench database and TSV)
#
# Replays, with psql and \timing, the statements pm-ingestd's writer sends for the trades of
# bench/run.sh (TradeRepository::copy_in), BATCH rows per transaction (default 5000; the daemon's
# --batch-max-events bound is 20,000, and its adaptive batches are mostly far smaller), on a fresh
# polymarket_trades each time, in text COPY (the daemon sends binary COPY, its rows sorted by
# primary key within a batch: this is an approximation of its SQL, not a replay of its bytes), in
# four variants: the staged path (TradeRepository's fallback, and the daemon's only path before
# 9710e96); the same with synchronous_commit = off; the daemon's direct path since 9710e96 (probe
# of stored keys, COPY straight into polymarket_trades under a savepoint, watermark upsert); and
# plain COPY per batch (no dedup at all). Prints the time per phase.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BATCH=${1:-5000}
WORK=${PM_BENCH_WORK:-$ROOT/var/bench}
# The URL (a password in it) stays off psql's command line, where ps shows it: pg_psql gives it
# to psql as libpq environment variables.
# shellcheck source=scripts/lib_pg_env.sh
source "$ROOT/scripts/lib_pg_env.sh"
ADMIN_URL=${DATABASE_URL:-$("$ROOT/scripts/pg.sh" url)}
URL=$(pg_url_with_db "$ADMIN_URL" pm_bench)
pg_prepare_url "$URL"
[ -f "$WORK/trades.tsv" ] || { echo "writer_phases: run bench/run.sh first ($WORK/trades.tsv is missing)" >&2; exit 2; }
PARTS="$WORK/phases"
rm -rf "$PARTS"; mkdir -p "$PARTS/staged" "$PARTS/direct"
awk -v OFS='\t' -v b="$BATCH" -v d="$PARTS" '{ i = int((NR-1)/b); printf "%d\t%s\n", (NR-1)%b, $0 > sprintf("%s/staged/%05d.tsv", d, i); print $0 > sprintf("%s/direct/%05d.tsv", d, i) }' "$WORK/trades.tsv"

/usr/bin/python3 - "$PARTS" <<'PY'
import os, sys
d = sys.argv[1]
files = sorted(os.listdir(f"{d}/staged"))
cols = 'condition_id, trade_id, token_id, price, size, side, "timestamp", raw_json, outcome, outcome_index'
stage = """CREATE TEMP TABLE IF NOT EXISTS pm_stage_trades (
  ord bigint, condition_id text, trade_id text, token_id text, price real, size real, side text,
  "timestamp" bigint, raw_json text, outcome text, outcome_index integer) ON COMMIT DELETE ROWS;"""
move = f"""WITH ins AS (
  INSERT INTO polymarket_trades ({cols})
  SELECT {cols} FROM pm_stage_trades ORDER BY ord
  ON CONFLICT (condition_id, trade_id) DO NOTHING
  RETURNING condition_id, "timestamp"),
wm AS (
  INSERT INTO trade_watermarks (condition_id, last_timestamp, updated_at)
  SELECT condition_id, max("timestamp"), 'bench' FROM ins
  WHERE "timestamp" IS NOT NULL GROUP BY condition_id ORDER BY condition_id
  ON CONFLICT (condition_id) DO UPDATE
    SET last_timestamp = GREATEST(trade_watermarks.last_timestamp, EXCLUDED.last_timestamp),
        updated_at = EXCLUDED.updated_at
  RETURNING 1)
SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM wm);"""
for name, sync in (("staged", "on"), ("staged_async", "off")):
    with open(f"{d}/{name}.sql", "w") as f:
        f.write(f"\\set ON_ERROR_STOP 1\nSET synchronous_commit = {sync};\n{stage}\n\\timing on\n")
        for p in files:
            f.write(f"BEGIN;\nTRUNCATE pm_stage_trades;\n\\copy pm_stage_trades FROM '{d}/staged/{p}'\n{move}\nCOMMIT;\n")
def arr(vals):
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in vals) + "}"
with open(f"{d}/daemon.sql", "w") as f:
    f.write("\\set ON_ERROR_STOP 1\n\\timing on\n")
    for p in files:
        keys, newest = [], {}
        for line in open(f"{d}/direct/{p}"):
            c = line.split("\t")
            keys.append((c[0], c[1]))
            newest[c[0]] = max(newest.get(c[0], 0), int(c[6]))
        f.write("BEGIN;\n")
        f.write("SELECT count(*) FROM polymarket_trades t JOIN unnest('%s'::text[], '%s'::text[]) AS k(condition_id, trade_id) "
                "USING (condition_id, trade_id);\n" % (arr(k[0] for k in keys), arr(k[1] for k in keys)))
        f.write("SAVEPOINT direct;\n")
        f.write(f"\\copy polymarket_trades ({cols}) FROM '{d}/direct/{p}'\n")
        f.write("RELEASE SAVEPOINT direct;\n")
        conds = sorted(newest)
        f.write("INSERT INTO trade_watermarks (condition_id, last_timestamp, updated_at) SELECT cid, ts, 'bench' "
                "FROM unnest('%s'::text[], '{%s}'::bigint[]) AS w(cid, ts) ORDER BY cid ON CONFLICT (condition_id) DO UPDATE "
                "SET last_timestamp = GREATEST(trade_watermarks.last_timestamp, EXCLUDED.last_timestamp), "
                "updated_at = EXCLUDED.updated_at;\n" % (arr(conds), ",".join(str(newest[c]) for c in conds)))
        f.write("COMMIT;\n")
with open(f"{d}/direct.sql", "w") as f:
    f.write("\\set ON_ERROR_STOP 1\n\\timing on\n")
    for p in files:
        f.write(f"BEGIN;\n\\copy polymarket_trades ({cols}) FROM '{d}/direct/{p}'\nCOMMIT;\n")
PY

ROWS=$(wc -l < "$WORK/trades.tsv")
summarise() {  # OUT NAMES...
  local out=$1; shift
  /usr/bin/python3 - "$out" "$ROWS" "$@" <<'PY'
import re, sys
times = [float(m.group(1)) for m in re.finditer(r"^Time: ([0-9.]+) ms", open(sys.argv[1]).read(), re.M)]
rows = int(sys.argv[2])
names = sys.argv[3:]
tot = {n: 0.0 for n in names}
for i, t in enumerate(times):
    tot[names[i % len(names)]] += t
all_ms = sum(times)
print(f"  total {all_ms / 1000:.2f} s = {rows / all_ms * 1000:,.0f} rows/s;  " +
      ", ".join(f"{n} {v / 1000:.2f} s ({v / all_ms:.0%})" for n, v in tot.items()))
PY
}
fresh() {
  pg_psql "$URL" -Xqv ON_ERROR_STOP=1 -c "DROP TABLE polymarket_trades" \
    -c "CREATE TABLE polymarket_trades (LIKE bench_trades_template INCLUDING ALL)" -c "TRUNCATE trade_watermarks" >/dev/null
}
for v in staged staged_async daemon direct; do
  fresh
  pg_psql "$URL" -X -q -f "$PARTS/$v.sql" > "$PARTS/$v.out" 2>&1
  echo "$v ($BATCH rows per transaction):"
  if [ "$v" = direct ]; then summarise "$PARTS/$v.out" BEGIN COPY COMMIT
  elif [ "$v" = daemon ]; then summarise "$PARTS/$v.out" BEGIN probe SAVEPOINT COPY RELEASE watermarks COMMIT
  else summarise "$PARTS/$v.out" BEGIN TRUNCATE "COPY-stage" "INSERT..SELECT" COMMIT; fi
done

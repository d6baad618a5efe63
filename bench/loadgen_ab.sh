#!/usr/bin/env bash
# Compares two pm-loadgen binaries against the same pm-ingestd, alternating A and B, on the
# benchmark's trades (run bench/run.sh once first: it leaves var/bench/trades.ndjson and the
# pm_bench database). Used to check that pm-loadgen on pm::client::ProducerClient costs no more
# than its own earlier connection code (issue 13).
#
#   bench/loadgen_ab.sh OLD_LOADGEN NEW_LOADGEN PM_INGESTD [reps (3)]
#
# Per run it prints one line: the binary, the mode (unlimited on 2 connections with --wait-applied;
# paced at PM_AB_RATE (25000) events/s on 4 connections), acked events/s, end-to-end rows/s, ack
# p50/p99 in ms and the loadgen's CPU seconds (user+sys, from /usr/bin/time).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OLD=$1 NEW=$2 INGESTD=$3 REPS=${4:-3}
RATE=${PM_AB_RATE:-25000}
WORK=${PM_BENCH_WORK:-$ROOT/var/bench}
TRADES="$WORK/trades.ndjson"
[ -f "$TRADES" ] || { echo "loadgen_ab: $TRADES is missing: run bench/run.sh once" >&2; exit 2; }
# The URLs (a password in them) stay off command lines, where ps shows them: psql gets them
# through pg_psql (libpq environment variables), the executables as DATABASE_URL.
# shellcheck source=scripts/lib_pg_env.sh
source "$ROOT/scripts/lib_pg_env.sh"
ADMIN_URL=${DATABASE_URL:-$("$ROOT/scripts/pg.sh" url)}
URL=$(pg_url_with_db "$ADMIN_URL" pm_bench)
pg_prepare_url "$URL"

fresh_table() {
  pg_psql "$URL" -Xqv ON_ERROR_STOP=1 -c "DROP TABLE polymarket_trades" \
    -c "CREATE TABLE polymarket_trades (LIKE bench_trades_template INCLUDING ALL)" \
    -c "TRUNCATE trade_watermarks, trigger_watermarks, polymarket_first_triggers, pm_dead_letters" \
    -c "DELETE FROM pm_ingest_checkpoints" -c "CHECKPOINT" >/dev/null 2>&1
}
DPID="" DDIR=""
start_daemon() {
  DDIR=$(mktemp -d "$WORK/ab.XXXXXX")
  DATABASE_URL="$URL" "$INGESTD" --socket "$DDIR/s" --wal-dir "$DDIR/wal" --log-level warn > "$DDIR/log" 2>&1 &
  DPID=$!
  for _ in $(seq 200); do [ -S "$DDIR/s" ] && return 0; sleep 0.05; done
  echo "loadgen_ab: pm-ingestd did not come up" >&2; cat "$DDIR/log" >&2; exit 1
}
stop_daemon() { kill -TERM "$DPID"; wait "$DPID" || true; DPID=""; rm -rf "$DDIR"; DDIR=""; }
# On a failure: the daemon of the run in progress (not a pid reused since), and its directory.
trap '[ -n "$DPID" ] && kill "$DPID" 2>/dev/null; [ -n "$DDIR" ] && rm -rf "$DDIR"; true' EXIT

one() {  # label binary mode
  local label=$1 bin=$2 mode=$3 args
  if [ "$mode" = unlimited ]; then args=(--rate unlimited --connections 2)
  else args=(--rate "$RATE" --connections 4 --count $((RATE * 8))); fi
  fresh_table
  start_daemon
  local json cpu
  json=$( { DATABASE_URL="$URL" /usr/bin/time -f "cpu %U %S" "$bin" --socket "$DDIR/s" --input "$TRADES" "${args[@]}" --wait-applied \
             --poll-ms 5 --json --quiet 2> "$WORK/ab.time"; } )
  cpu=$(awk '/^cpu/ {print $2 + $3}' "$WORK/ab.time")
  stop_daemon
  python3 - "$label" "$mode" "$cpu" "$json" <<'PY'
import json, sys
label, mode, cpu, j = sys.argv[1], sys.argv[2], float(sys.argv[3]), json.loads(sys.argv[4])
lat = j["ack_latency_ms"]
print(f"{label:4} {mode:9} acked/s {j['throughput_eps']:9.0f}  end-to-end rows/s {j['end_to_end']['rows_per_s']:9.0f}  "
      f"ack p50 {lat['p50']:6.2f} p99 {lat['p99']:7.2f} ms  loadgen cpu {cpu:5.2f} s")
PY
}

for rep in $(seq "$REPS"); do
  for mode in unlimited paced; do
    one old "$OLD" "$mode"
    one new "$NEW" "$mode"
  done
done

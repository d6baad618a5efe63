#!/usr/bin/env bash
# bench/profile.sh: where the machine's CPU goes while pm-ingestd ingests, by thread.
#
#   bench/profile.sh RATE [SECONDS]     # paced load: RATE events/s for SECONDS (default 3) on 4
#                                       # connections, with visibility probes (as bench/run.sh)
#   bench/profile.sh unlimited          # the throughput run: every trade as fast as acked, 2
#                                       # connections, until the last row is visible
#
# After bench/run.sh (it uses its pm_bench database, its trades and its build directory). Runs
# the daemon with its defaults (plus $PM_BENCH_DAEMON_ARGS) on a fresh polymarket_trades, samples
# every CPU with `perf record -a -g` (paced: from the first event the daemon logs, once
# pm-loadgen has loaded its input; unlimited: the whole run, the loadgen's input loading
# included) and prints the share of the machine each thread name took (pm-ingestd's threads are
# named pm-conn, pm-lane, pm-writer, ...; PostgreSQL's backends `postgres`; idle CPU `swapper`),
# what the busiest ones spent it on, the PostgreSQL share under COPY and under B-tree insertion,
# and pm-loadgen's summary line.
# Needs perf (linux-perf, installed by scripts/setup.sh) and root or perf_event_paranoid <= -1.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RATE=${1:?usage: bench/profile.sh RATE|unlimited [SECONDS]}
SECONDS_PACED=${2:-3}
BUILD=${PM_BUILD_DIR:-$ROOT/build-bench}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
WORK=${PM_BENCH_WORK:-$ROOT/var/bench}
TRADES="$WORK/trades.ndjson"
DAEMON_ARGS=(${PM_BENCH_DAEMON_ARGS:-})
# The URLs (a password in them) stay off command lines, where ps shows them: psql gets them
# through pg_psql (libpq environment variables), the executables as DATABASE_URL.
# shellcheck source=scripts/lib_pg_env.sh
source "$ROOT/scripts/lib_pg_env.sh"
ADMIN_URL=${DATABASE_URL:-$("$ROOT/scripts/pg.sh" url)}
URL=$(pg_url_with_db "$ADMIN_URL" pm_bench)
[ -f "$TRADES" ] && [ -x "$BUILD/daemon/pm-ingestd" ] || { echo "profile: run bench/run.sh first ($TRADES or $BUILD/daemon/pm-ingestd is missing)" >&2; exit 2; }
command -v perf >/dev/null || { echo "profile: perf is missing (scripts/setup.sh installs linux-perf)" >&2; exit 2; }
case "$RATE" in unlimited) ;; *[!0-9]*|"") echo "profile: RATE must be a number of events/s or 'unlimited'" >&2; exit 2 ;; esac

OUT=$(mktemp -d "$WORK/profile.XXXXXX")
DPID=""
LPID=""
# A failed step (perf, say) left the paced pm-loadgen running.
cleanup() {
  [ -n "$LPID" ] && kill "$LPID" 2>/dev/null && wait "$LPID" 2>/dev/null
  [ -n "$DPID" ] && kill -TERM "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
  rm -rf "$OUT/wal"
}
trap cleanup EXIT

pg_psql "$URL" -Xqv ON_ERROR_STOP=1 -c "DROP TABLE polymarket_trades" \
  -c "CREATE TABLE polymarket_trades (LIKE bench_trades_template INCLUDING ALL)" \
  -c "TRUNCATE trade_watermarks, trigger_watermarks, polymarket_first_triggers, pm_dead_letters" \
  -c "DELETE FROM pm_ingest_checkpoints" -c "CHECKPOINT" >/dev/null
sync
MPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DATABASE_URL="$URL" "$BUILD/daemon/pm-ingestd" --socket "$OUT/ingest.sock" --wal-dir "$OUT/wal" \
  --metrics-listen "127.0.0.1:$MPORT" --log-level warn "${DAEMON_ARGS[@]}" > "$OUT/daemon.log" 2>&1 &
DPID=$!
for _ in $(seq 400); do
  curl -fs "http://127.0.0.1:$MPORT/metrics" 2>/dev/null | grep -q '^pm_ingest_database_up 1' && break
  kill -0 "$DPID" 2>/dev/null || { cat "$OUT/daemon.log" >&2; exit 1; }
  sleep 0.05
done

LOADGEN=("$BUILD/daemon/pm-loadgen" --socket "$OUT/ingest.sock" --input "$TRADES" --json --quiet)
if [ "$RATE" = unlimited ]; then
  DATABASE_URL="$URL" perf record -a -g -o "$OUT/perf.data" -- "${LOADGEN[@]}" --rate unlimited --connections 2 --wait-applied --poll-ms 5 \
    > "$OUT/loadgen.json" 2> "$OUT/perf.log"
else
  probes=$(( RATE / 100 > 100 ? RATE / 100 : 100 ))
  DATABASE_URL="$URL" "${LOADGEN[@]}" --rate $(( RATE - probes )) --duration "$SECONDS_PACED" --connections 4 --visibility-probes "$probes" \
    > "$OUT/loadgen.json" &
  LPID=$!
  # pm-loadgen loads its input first (over a second here): sample from its first event on.
  for _ in $(seq 1500); do
    curl -fs "http://127.0.0.1:$MPORT/metrics" 2>/dev/null |
      awk '$1 == "pm_ingest_wal_appended_records_total" && $2 > 0 { seen = 1 } END { exit !seen }' && break
    kill -0 "$LPID" 2>/dev/null || break
    sleep 0.02
  done
  window=$(awk -v s="$SECONDS_PACED" 'BEGIN { w = s - 0.3; printf "%.1f", w < 0.5 ? 0.5 : w }')
  perf record -a -g -o "$OUT/perf.data" -- sleep "$window" > /dev/null 2> "$OUT/perf.log"
  wait "$LPID"
  LPID=""
fi
perf script -i "$OUT/perf.data" -F comm,ip,sym 2>/dev/null > "$OUT/perf.txt"
python3 "$ROOT/bench/profile_report.py" "$OUT/perf.txt" --json "$OUT/profile.json"
python3 - "$OUT/loadgen.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
line = f"\npm-loadgen: {j['throughput_eps']:,.0f} acks/s, ack p50 {j['ack_latency_ms']['p50']:.2f} ms, p99 {j['ack_latency_ms']['p99']:.2f} ms"
if "end_to_end" in j:
    line += f"; end to end {j['end_to_end']['rows_per_s']:,.0f} rows/s"
if "visible_ms" in j:
    v = j["visible_ms"]
    line += f"; visible p50 {v['p50']:.1f} ms, p99 {v['p99']:.1f} ms"
print(line)
PY
rm -f "$OUT/perf.data"
echo "profile: files in $OUT" >&2

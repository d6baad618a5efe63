#!/usr/bin/env bash
# bench/run.sh: the pm-ingestd benchmark of issue 6, side by side with the anchors, in one run.
#
#   bench/run.sh            # run by hand from a clone; takes about 10 minutes; not part of the tests
#
# Same machine, same PostgreSQL (the private cluster of scripts/pg.sh, or $DATABASE_URL's server),
# its own database `pm_bench` (created if missing; other databases are never touched), the same
# trades of ../shared/bench/gen_trades.py, a fresh polymarket_trades table before every writer:
#   1. psql \copy (text format) of the rows, prepared as a TSV file (bench/make_tsv.py);
#   2. ../shared/bench/asyncpg_anchor.py FILE executemany, and ... copy (binary COPY);
#   3. pm-ingestd end to end: pm-loadgen --input FILE --wait-applied, from the first line sent to
#      the last row visible in PostgreSQL, every event acked (fsynced in the daemon's log);
# then ack latency at 25/50/75 % of the maximum end-to-end rate; freshness (paced load at 100,
# 1,000, 10,000 events/s and 25 and 50 % of that maximum, with pm-loadgen's visibility probes timed from
# the line written to the row visible to another PostgreSQL session); throughput with 10 % duplicates,
# and the daemon's peak RSS (VmHWM) while PostgreSQL is down and a 2,000,000-event backlog builds
# in its log, and the time to drain that backlog once PostgreSQL is back. That part runs against a
# throwaway PostgreSQL cluster of its own (initdb in the work directory, its own port, default
# settings), because the shared cluster must never be stopped.
#
# Writes bench/results.md (Markdown tables), bench/results.png (throughput per writer; latency
# against load) and bench/results-freshness.png (visible latency against load) and prints the
# table with the ratios. Settings (environment):
#   PM_BENCH_ROWS (200000)  PM_BENCH_BACKLOG (2000000)  PM_BENCH_REPS (2: runs per writer)
#   PM_BUILD_DIR (build-bench)  PM_BENCH_JOBS (2: build jobs)  PM_BENCH_WORK (var/bench)
#   PM_BENCH_DAEMON_ARGS (extra pm-ingestd options for every daemon run, e.g. "--batch-max-events 20000")
#   PM_BENCH_CONNECTIONS (2: pm-loadgen connections for the throughput runs)
#   PM_BENCH_SKIP_BACKLOG=1 skips the 2M backlog part.
#   PM_BENCH_DB (pm_bench: the database it uses, e.g. another one while a second benchmark runs)
#   PM_BENCH_ONLY=freshness runs only the pm-ingestd end-to-end runs (for the maximum rate) and the
#     freshness section, and writes its report to $PM_BENCH_WORK, leaving bench/results.* alone.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -d "$ROOT/../shared/bench" ]; then
  echo "bench: the shared folder is missing: expected $ROOT/../shared/bench (gen_trades.py, asyncpg_anchor.py) beside the repository" >&2
  exit 2
fi
SHARED=$(cd "$ROOT/../shared" && pwd)
N=${PM_BENCH_ROWS:-200000}
BACKLOG=${PM_BENCH_BACKLOG:-2000000}
REPS=${PM_BENCH_REPS:-2}
BUILD=${PM_BUILD_DIR:-$ROOT/build-bench}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
WORK=${PM_BENCH_WORK:-$ROOT/var/bench}
DAEMON_ARGS=(${PM_BENCH_DAEMON_ARGS:-})
CONNS=${PM_BENCH_CONNECTIONS:-2}
RESULTS="$WORK/results.jsonl"
ONLY=${PM_BENCH_ONLY:-}
case "$ONLY" in ""|freshness) ;; *) echo "bench: PM_BENCH_ONLY must be empty or 'freshness'" >&2; exit 2 ;; esac
full() { [ -z "$ONLY" ]; }
COLS="condition_id, trade_id, token_id, price, size, side, \"timestamp\", raw_json, outcome, outcome_index"

log() { echo "bench: $*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", a - b }'; }
record() { echo "$1" >> "$RESULTS"; }

cd "$ROOT"
# The database URLs (a password in them) never go on a command line, where ps shows them: psql
# gets them through pg_psql (libpq environment variables), pm-ingestd and pm-loadgen as
# DATABASE_URL, pm-ingestctl as PM_INGESTD_DATABASE_URL (which it reads before DATABASE_URL).
# shellcheck source=scripts/lib_pg_env.sh
source "$ROOT/scripts/lib_pg_env.sh"
scripts/setup.sh >&2
ADMIN_URL=${DATABASE_URL:-$(scripts/pg.sh url)}
BENCH_DB=${PM_BENCH_DB:-pm_bench}
BENCH_URL=$(pg_url_with_db "$ADMIN_URL" "$BENCH_DB")
pg_prepare_url "$ADMIN_URL" "$BENCH_URL"
if ! pg_psql "$ADMIN_URL" -XAtqc "SELECT 1" >/dev/null 2>&1; then scripts/pg.sh start >&2; fi

log "building pm-ingestd, pm-ingestctl, pm-loadgen in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"${PM_BENCH_JOBS:-2}" --target pm-ingestd pm-ingestctl pm-loadgen pm-log-probe >/dev/null
INGESTD="$BUILD/daemon/pm-ingestd"
CTL="$BUILD/daemon/pm-ingestctl"
LOADGEN="$BUILD/daemon/pm-loadgen"
PROBE="$BUILD/bench/pm-log-probe"

mkdir -p "$WORK"
rm -f "$RESULTS"
pg_psql "$ADMIN_URL" -XAtqc "SELECT 1 FROM pg_database WHERE datname = '$BENCH_DB'" | grep -q 1 ||
  pg_psql "$ADMIN_URL" -Xqc "CREATE DATABASE \"$BENCH_DB\"" >/dev/null
PM_INGESTD_DATABASE_URL="$BENCH_URL" "$CTL" migrate >/dev/null
# The table every writer starts from: polymarket_trades as migrated (primary key and the
# (condition_id, timestamp) index of seed/03a), copied fresh before each writer.
pg_psql "$BENCH_URL" -Xqv ON_ERROR_STOP=1 -c "DROP TABLE IF EXISTS bench_trades_template" \
  -c "CREATE TABLE bench_trades_template (LIKE polymarket_trades INCLUDING ALL)" >/dev/null

fresh_table() {
  pg_psql "$BENCH_URL" -Xqv ON_ERROR_STOP=1 \
    -c "DROP TABLE polymarket_trades" \
    -c "CREATE TABLE polymarket_trades (LIKE bench_trades_template INCLUDING ALL)" \
    -c "TRUNCATE trade_watermarks, trigger_watermarks, polymarket_first_triggers, pm_dead_letters" \
    -c "DELETE FROM pm_ingest_checkpoints" >/dev/null 2>&1
  # Every writer starts from a fresh checkpoint, so none pays for a checkpoint that the previous
  # one's WAL triggered (needs pg_checkpoint, which scripts/pg.sh grants; skipped elsewhere).
  pg_psql "$BENCH_URL" -Xqc "CHECKPOINT" >/dev/null 2>&1 || true
  # The dropped table's files are unlinked by that checkpoint; their blocks are freed (and, on a
  # file system mounted with `discard`, discarded) at the next journal commit, which would
  # otherwise land inside the next run (a 56 ms fdatasync of a new log's first group was seen).
  sync
}
rows() { pg_psql "${1:-$BENCH_URL}" -XAtqc "SELECT count(*) FROM polymarket_trades"; }

TRADES="$WORK/trades.ndjson"
TRADES_DUP="$WORK/trades_dup10.ndjson"
TSV="$WORK/trades.tsv"
log "generating $N trades (gen_trades.py), the 10 % duplicate variant and the TSV"
python3 "$SHARED/bench/gen_trades.py" "$N" > "$TRADES"
if full; then
  python3 "$SHARED/bench/gen_trades.py" "$N" --dup-ratio 0.1 > "$TRADES_DUP"
  python3 "$ROOT/bench/make_tsv.py" "$TRADES" "$TSV"
  DISTINCT_DUP=$(python3 -c 'import json,sys; print(len({(e["condition_id"],e["trade_id"]) for e in map(json.loads, open(sys.argv[1]))}))' "$TRADES_DUP")
fi

# --- the daemon -----------------------------------------------------------------------------
DPID=""
DDIR=""
MPORT=""
metric() {  # value of one series on the daemon's /metrics, or -1
  python3 - "$MPORT" "$1" <<'PY'
import sys, urllib.request
try:
    body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
except Exception:
    print(-1); sys.exit()
for line in body.splitlines():
    if line.startswith(sys.argv[2] + " "):
        print(line.split()[1]); break
else:
    print(-1)
PY
}
start_daemon() {  # URL [options...]
  local url=$1; shift
  DDIR=$(mktemp -d "$WORK/daemon.XXXXXX")
  MPORT=$(free_port)
  DATABASE_URL="$url" "$INGESTD" --socket "$DDIR/ingest.sock" --wal-dir "${DAEMON_WAL_DIR:-$DDIR/wal}" \
    --metrics-listen "127.0.0.1:$MPORT" --log-level warn "${DAEMON_ARGS[@]}" "$@" > "$DDIR/daemon.log" 2>&1 &
  DPID=$!
  for _ in $(seq 200); do [ -S "$DDIR/ingest.sock" ] && return 0; kill -0 "$DPID" 2>/dev/null || break; sleep 0.05; done
  log "pm-ingestd did not come up:"; cat "$DDIR/daemon.log" >&2; exit 1
}
wait_db_up() {
  for _ in $(seq 400); do [ "$(metric pm_ingest_database_up)" = "1" ] && return 0; sleep 0.05; done
  log "pm-ingestd did not reach PostgreSQL"; cat "$DDIR/daemon.log" >&2; exit 1
}
stop_daemon() {
  [ -n "$DPID" ] || return 0
  kill -TERM "$DPID" 2>/dev/null || true
  wait "$DPID" 2>/dev/null || true
  DPID=""
  rm -rf "$DDIR"
}
PGTMP=""
PGRUN=()
SHM=""
PROBE_PID=""
cleanup() {
  [ -n "$PROBE_PID" ] && kill "$PROBE_PID" 2>/dev/null || true
  stop_daemon
  [ -n "$SHM" ] && rm -rf "$SHM"
  if [ -n "$PGTMP" ]; then
    [ -f "$PGTMP/data/PG_VERSION" ] &&
      { "${PGRUN[@]}" /usr/lib/postgresql/15/bin/pg_ctl -D "$PGTMP/data" -m immediate stop >/dev/null 2>&1 || true; }
    rm -rf "$PGTMP"
  fi
}
trap cleanup EXIT

# pm-ingestd end to end through pm-loadgen; leaves the loadgen's JSON summary in LAST_JSON.
LAST_JSON=""
daemon_run() {  # label run file [daemon options...]
  local label=$1 run=$2 file=$3; shift 3
  fresh_table
  start_daemon "$BENCH_URL" "$@"
  wait_db_up
  local json
  json=$(DATABASE_URL="$BENCH_URL" "$LOADGEN" --socket "$DDIR/ingest.sock" --input "$file" --rate unlimited --connections "$CONNS" \
         --wait-applied --poll-ms 5 --json --quiet)
  local hwm; hwm=$(awk '/VmHWM/ {print $2}' "/proc/$DPID/status")
  stop_daemon
  record "{\"section\":\"writers\",\"writer\":\"$label\",\"run\":$run,\"file\":\"$(basename "$file")\",\"rss_kib\":$hwm,\"loadgen\":$json}"
  LAST_JSON=$json
}

# --- 1-3: the writers, REPS times each, interleaved --------------------------------------------
for run in $(seq "$REPS"); do
  if ! full; then daemon_run "pm-ingestd" "$run" "$TRADES"; log "pm-ingestd run $run: $LAST_JSON"; continue; fi
  fresh_table
  t0=$(now); pg_psql "$BENCH_URL" -Xqc "\\copy polymarket_trades ($COLS) FROM '$TSV'"; t1=$(now)
  n=$(rows)
  record "{\"section\":\"writers\",\"writer\":\"psql copy (text)\",\"run\":$run,\"rows\":$n,\"seconds\":$(minus "$t1" "$t0")}"
  log "psql copy run $run: $n rows in $(minus "$t1" "$t0") s"
  for mode in executemany copy; do
    fresh_table
    out=$(DATABASE_URL="$BENCH_URL" /usr/bin/python3 "$SHARED/bench/asyncpg_anchor.py" "$TRADES" "$mode")
    log "$out"
    n=$(echo "$out" | sed -E 's/.*: ([0-9]+) rows in ([0-9.]+) s.*/\1/'); s=$(echo "$out" | sed -E 's/.*: ([0-9]+) rows in ([0-9.]+) s.*/\2/')
    record "{\"section\":\"writers\",\"writer\":\"asyncpg $mode\",\"run\":$run,\"rows\":$n,\"seconds\":$s}"
  done
  daemon_run "pm-ingestd" "$run" "$TRADES"
  log "pm-ingestd run $run: $LAST_JSON"
done

# --- batch size: the one writer lever the daemon exposes -------------------------------------
full && for batch in 1000 20000 50000; do
  daemon_run "pm-ingestd --batch-max-events $batch" 1 "$TRADES" --batch-max-events "$batch"
  log "pm-ingestd batch $batch: $LAST_JSON"
done

# --- 10 % duplicates -------------------------------------------------------------------------
if full; then
fresh_table
out=$(DATABASE_URL="$BENCH_URL" /usr/bin/python3 "$SHARED/bench/asyncpg_anchor.py" "$TRADES_DUP" executemany)
n=$(echo "$out" | sed -E 's/.*: ([0-9]+) rows in ([0-9.]+) s.*/\1/'); s=$(echo "$out" | sed -E 's/.*: ([0-9]+) rows in ([0-9.]+) s.*/\2/')
record "{\"section\":\"dup\",\"writer\":\"asyncpg executemany\",\"lines\":$N,\"rows\":$n,\"seconds\":$s}"
daemon_run "pm-ingestd, 10 % duplicates" 1 "$TRADES_DUP"
n=$(rows)
record "{\"section\":\"dup\",\"writer\":\"pm-ingestd\",\"lines\":$N,\"rows\":$n,\"distinct\":$DISTINCT_DUP,\"loadgen\":$LAST_JSON}"
log "10 % duplicates: $n rows stored of $DISTINCT_DUP distinct trades"
fi

# --- event sourcing: the daemon with --archive-dir, then pm-ingestctl replay of its archive -----
# The same trades end to end with the archive on (16 MiB segments, so most of the log is archived
# while the run lasts), then the archive and the live log replayed into a fresh table.
if full; then
  ES_WAL="$WORK/es-wal"; ES_ARCHIVE="$WORK/es-archive"; rm -rf "$ES_WAL" "$ES_ARCHIVE"
  fresh_table
  DAEMON_WAL_DIR="$ES_WAL" start_daemon "$BENCH_URL" --archive-dir "$ES_ARCHIVE" --wal-segment-bytes 16M
  wait_db_up
  json=$(DATABASE_URL="$BENCH_URL" "$LOADGEN" --socket "$DDIR/ingest.sock" --input "$TRADES" --rate unlimited --connections "$CONNS" \
         --wait-applied --poll-ms 5 --json --quiet)
  for _ in $(seq 600); do [ "$(metric pm_ingest_archive_pending_segments)" = "0" ] && break; sleep 0.05; done
  stop_daemon
  archived=$(du -sb "$ES_ARCHIVE" | cut -f1); logged=$(du -sb "$ES_WAL" | cut -f1)
  record "{\"section\":\"event_sourcing\",\"writer\":\"pm-ingestd --archive-dir\",\"archive_bytes\":$archived,\"live_log_bytes\":$logged,\"loadgen\":$json}"
  log "pm-ingestd with --archive-dir: $json (archive $archived bytes, live log $logged bytes)"
  fresh_table
  t0=$(now)
  PM_INGESTD_DATABASE_URL="$BENCH_URL" "$CTL" replay --source "$ES_ARCHIVE" --source "$ES_WAL" > "$WORK/replay.out" 2>/dev/null
  t1=$(now)
  n=$(rows)
  record "{\"section\":\"event_sourcing\",\"writer\":\"pm-ingestctl replay\",\"rows\":$n,\"seconds\":$(minus "$t1" "$t0")}"
  log "pm-ingestctl replay: $n rows in $(minus "$t1" "$t0") s"
  rm -rf "$ES_WAL" "$ES_ARCHIVE"
fi

# --- ack latency at 25/50/75 % of the maximum end-to-end rate ---------------------------------
MAX=$(python3 - "$RESULTS" <<'PY'
import json, sys, statistics
r = [json.loads(l) for l in open(sys.argv[1])]
v = [x["loadgen"]["end_to_end"]["rows_per_s"] for x in r if x["section"] == "writers" and x.get("writer") == "pm-ingestd"]
print(int(statistics.median(v)))
PY
)
log "maximum sustained (end-to-end) rate: $MAX events/s"
# The paced runs (ack latency, freshness) take distinct trades of their own, enough for 8 s at the
# maximum rate: capped at the $N trades, the 50 % runs lasted 3 s from a cold daemon, too short
# for a queue to settle (and replaying the file again would make the rest duplicates, which the
# writer handles otherwise).
PACED_N=$(( MAX * 8 )); [ "$PACED_N" -lt "$N" ] && PACED_N=$N
PACED="$TRADES"
if [ "$PACED_N" -gt "$N" ]; then
  PACED="$WORK/trades_paced.ndjson"
  log "generating $PACED_N trades for the paced runs (gen_trades.py)"
  python3 "$SHARED/bench/gen_trades.py" "$PACED_N" > "$PACED"
fi
full && for pct in 25 50 75 100; do
  rate=$(( MAX * pct / 100 ))
  count=$(( rate * 8 )); [ "$count" -gt "$PACED_N" ] && count=$PACED_N
  fresh_table
  start_daemon "$BENCH_URL"
  wait_db_up
  json=$(DATABASE_URL="$BENCH_URL" "$LOADGEN" --socket "$DDIR/ingest.sock" --input "$PACED" --count "$count" --rate "$rate" --connections 4 \
         --wait-applied --poll-ms 5 --json --quiet)
  stop_daemon
  record "{\"section\":\"latency\",\"percent\":$pct,\"rate\":$rate,\"loadgen\":$json}"
  log "latency at $pct % ($rate/s): $json"
done

# --- freshness: arrival to visible in another PostgreSQL session ------------------------------
# Paced, open-loop load of the same trades at 100, 1,000, 10,000 events/s and at 25 and 50 % of MAX, the
# daemon with its defaults. Part of each rate is pm-loadgen's visibility probes: trades sent on a
# connection of their own, which pm-loadgen's poller (a PostgreSQL session of its own, a range
# scan of the primary key every ~0.2 ms plus its round trip) times from the line written into
# the socket to the row visible. 1 load connection up to 1,000/s (one bot), 4 above; the probe
# rate and the duration give at least 1,000 probes (10 s at every rate: $PACED holds enough trades).
freshness_plan() {  # RATE -> "probes/s load_rate/s seconds connections"
  python3 - "$1" "$PACED_N" <<'PY'
import math, sys
rate, n = int(sys.argv[1]), int(sys.argv[2])
probes = min(rate // 2, max(100, rate // 100))
seconds = min(max(10, math.ceil(1000 / probes)), math.floor(n / (rate - probes) * 10) / 10)
probes = min(rate // 2, max(probes, math.ceil(1000 / seconds)))
print(probes, rate - probes, seconds, 1 if rate <= 1000 else 4)
PY
}
# The daemon's own view of its writer, one scrape: the batch transactions' summed time and count,
# the events they applied, the events' summed wait before their batch began (and visible time),
# and the writer connections. Two of these around a run say how busy the connections were.
writer_view() {
  python3 - "$MPORT" <<'PY'
import json, sys, urllib.request
names = {"pm_ingest_batch_commit_duration_seconds_sum": "batch_seconds",
         "pm_ingest_batch_commit_duration_seconds_count": "batches",
         "pm_ingest_batch_events_sum": "events",
         "pm_ingest_event_waiting_seconds_sum": "waiting_seconds",
         "pm_ingest_event_visible_seconds_sum": "visible_seconds",
         "pm_ingest_writer_connections": "connections"}
body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
view = {}
for line in body.splitlines():
    name, _, value = line.partition(" ")
    if name in names:
        view[names[name]] = float(value)
print(json.dumps(view))
PY
}
# One paced run at RATE, reported under LABEL; SCHED "batch" runs pm-loadgen under chrt --batch 0
# (the record says so), "" at the normal policy.
freshness_run() {  # RATE LABEL SCHED
  local rate=$1 label=$2 sched=$3 probes load seconds conns json wrap=() sched_field=""
  read -r probes load seconds conns < <(freshness_plan "$rate")
  if [ "$sched" = batch ]; then
    wrap=(chrt --batch 0)
    sched_field="\"loadgen_sched\":\"batch\","
  fi
  fresh_table
  start_daemon "$BENCH_URL"
  wait_db_up
  local before after
  before=$(writer_view)
  json=$(DATABASE_URL="$BENCH_URL" "${wrap[@]}" "$LOADGEN" --socket "$DDIR/ingest.sock" --input "$PACED" --rate "$load" --duration "$seconds" \
         --connections "$conns" --visibility-probes "$probes" --json --quiet)
  after=$(writer_view)
  stop_daemon
  record "{\"section\":\"freshness\",\"label\":\"$label\",$sched_field\"rate\":$rate,\"load_rate\":$load,\"probes\":$probes,\"seconds\":$seconds,\"connections\":$conns,\"writer_before\":$before,\"writer_after\":$after,\"loadgen\":$json}"
  log "freshness at $rate/s${sched:+ (pm-loadgen SCHED_BATCH)} ($load/s load on $conns connection(s) + $probes probes/s, $seconds s): $json"
}
for rate in 100 1000 10000 $(( MAX / 4 )) $(( MAX / 2 )); do
  label=$rate
  [ "$rate" = $(( MAX / 4 )) ] && label="25 % of max"
  [ "$rate" = $(( MAX / 2 )) ] && label="50 % of max"
  freshness_run "$rate" "$label" ""
done

# The 50 % load once more with pm-loadgen at SCHED_BATCH (chrt --batch 0): it keeps its share of
# the CPU and its schedule, but its wake-ups (a pacer per connection every millisecond, readers of
# acks, the poller) no longer preempt the daemon or PostgreSQL. The producer shares the two cores
# here; this row shows what that costs the daemon's freshness. Its own latencies can only read
# longer (its threads wake later), never shorter.
if chrt --batch 0 true 2>/dev/null; then
  freshness_run $(( MAX / 2 )) "50 % of max" batch
fi

# --- where the ack tail at 50 % comes from ---------------------------------------------------
# The same paced run at 50 % once more, but the daemon logs to memory (/dev/shm: not durable, a
# measurement only) while pm-log-probe writes the same bytes per second to this disk with one
# write and one fdatasync per group, as an ideal log would: the daemon's own share of the
# latency, and what the disk alone gives any log that shares it with PostgreSQL (appending, and
# overwriting a zero-filled file).
if full && [ -d /dev/shm ] && [ -w /dev/shm ]; then
  rate=$(( MAX / 2 ))
  count=$(( rate * 8 )); [ "$count" -gt "$PACED_N" ] && count=$PACED_N
  # The probe runs a second longer than the paced sending (pm-loadgen loads its input first):
  # its figures include some quieter time, so they flatter the disk rather than blame it.
  seconds=$(awk -v c="$count" -v r="$rate" 'BEGIN { printf "%.2f", c / r + 1 }')
  bytes_per_s=$(awk -v b="$(stat -c %s "$TRADES")" -v n="$N" -v r="$rate" 'BEGIN { printf "%.0f", (b / n + 17) * r }')
  for prealloc in false true; do
    SHM=$(mktemp -d /dev/shm/pm-bench.XXXXXX)
    fresh_table
    DAEMON_WAL_DIR="$SHM/wal" start_daemon "$BENCH_URL"
    wait_db_up
    probe_args=(--dir "$WORK" --seconds "$seconds" --bytes-per-second "$bytes_per_s" --ready-file "$SHM/probe-ready")
    [ "$prealloc" = true ] && probe_args+=(--preallocate)
    "$PROBE" "${probe_args[@]}" > "$WORK/probe.json" &
    PROBE_PID=$!
    for _ in $(seq 600); do [ -e "$SHM/probe-ready" ] && break; sleep 0.05; done
    [ -e "$SHM/probe-ready" ] || { log "pm-log-probe did not start its timed part"; exit 1; }
    json=$(DATABASE_URL="$BENCH_URL" "$LOADGEN" --socket "$DDIR/ingest.sock" --input "$PACED" --count "$count" --rate "$rate" --connections 4 \
           --wait-applied --poll-ms 5 --json --quiet)
    wait "$PROBE_PID"
    PROBE_PID=""
    stop_daemon
    rm -rf "$SHM"
    SHM=""
    record "{\"section\":\"floor\",\"preallocated\":$prealloc,\"rate\":$rate,\"loadgen\":$json,\"probe\":$(cat "$WORK/probe.json")}"
    log "log in memory, ideal log on disk (preallocated: $prealloc) at $rate/s: daemon $json; probe $(cat "$WORK/probe.json")"
  done
fi

# --- backlog: PostgreSQL down, 2M events into the log, then drain ----------------------------
if full && [ "${PM_BENCH_SKIP_BACKLOG:-0}" != 1 ]; then
  PGRUN=()
  if [ "$(id -u)" -eq 0 ]; then
    # The server runs as postgres, which may not reach $WORK (a clone under /root, say).
    PGRUN=(runuser -u postgres --)
    PGTMP=$(mktemp -d /var/tmp/pm-bench-pg.XXXXXX)
    chown postgres "$PGTMP"
  else
    PGTMP=$(mktemp -d "$WORK/pgtmp.XXXXXX")
  fi
  PGPORT=$(free_port)
  chmod 755 "$PGTMP"
  "${PGRUN[@]}" /usr/lib/postgresql/15/bin/initdb -D "$PGTMP/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  printf "port = %s\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n" "$PGPORT" "$PGTMP" >> "$PGTMP/data/postgresql.conf"
  pgctl() { "${PGRUN[@]}" /usr/lib/postgresql/15/bin/pg_ctl -D "$PGTMP/data" -l "$PGTMP/server.log" -w -t 120 "$@" >/dev/null; }
  pgctl start
  TMP_URL="postgresql://postgres@127.0.0.1:$PGPORT/postgres"
  pg_prepare_url "$TMP_URL"
  PM_INGESTD_DATABASE_URL="$TMP_URL" "$CTL" migrate >/dev/null
  start_daemon "$TMP_URL"
  wait_db_up
  rss0=$(awk '/VmRSS/ {print $2}' "/proc/$DPID/status")
  pgctl -m fast stop
  log "throwaway PostgreSQL stopped; sending $BACKLOG events into the daemon's log"
  json=$("$LOADGEN" --socket "$DDIR/ingest.sock" --count "$BACKLOG" --rate unlimited --connections 2 --seed 7 --json --quiet)
  hwm_down=$(awk '/VmHWM/ {print $2}' "/proc/$DPID/status")
  # The gauge is refreshed periodically: give it a moment to show the whole backlog.
  for _ in $(seq 50); do [ "$(metric pm_ingest_wal_unapplied_events)" = "$BACKLOG" ] && break; sleep 0.1; done
  unapplied=$(metric pm_ingest_wal_unapplied_events)
  wal_bytes=$(du -sb "$DDIR/wal" | cut -f1)
  log "backlog: $unapplied unapplied events, $wal_bytes log bytes, VmHWM $hwm_down KiB"
  # Timed from PostgreSQL up again (pg_ctl start returned): the drain includes the writer's
  # reconnect back-off (at most 5 s: the writer's retry_max_delay), not the server's own start.
  pgctl start
  t0=$(now)
  while [ "$(metric pm_ingest_wal_unapplied_events)" != "0" ]; do
    kill -0 "$DPID" 2>/dev/null || { log "pm-ingestd exited during the drain:"; cat "$DDIR/daemon.log" >&2; exit 1; }
    if awk -v a="$(now)" -v b="$t0" 'BEGIN { exit !(a - b > 3600) }'; then
      log "the backlog did not drain within an hour:"; tail -20 "$DDIR/daemon.log" >&2; exit 1
    fi
    sleep 0.1
  done
  t1=$(now)
  drained=$(rows "$TMP_URL")
  hwm_all=$(awk '/VmHWM/ {print $2}' "/proc/$DPID/status")
  stop_daemon
  record "{\"section\":\"backlog\",\"events\":$BACKLOG,\"rss_start_kib\":$rss0,\"hwm_down_kib\":$hwm_down,\"hwm_after_drain_kib\":$hwm_all,\"unapplied\":$unapplied,\"wal_bytes\":$wal_bytes,\"drain_seconds\":$(minus "$t1" "$t0"),\"rows\":$drained,\"loadgen\":$json}"
  log "drained $drained rows in $(minus "$t1" "$t0") s; VmHWM $hwm_all KiB"
  pgctl -m fast stop
  rm -rf "$PGTMP"; PGTMP=""
fi

# --- the report ------------------------------------------------------------------------------
PGVER=$(pg_psql "$BENCH_URL" -XAtqc "SHOW server_version")
PGSET=$(pg_psql "$BENCH_URL" -XAtqc "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings WHERE name IN ('shared_buffers','synchronous_commit','fsync','max_wal_size','wal_level')")
OUT="$ROOT/bench"; full || OUT="$WORK"
/usr/bin/python3 "$ROOT/bench/report.py" "$RESULTS" "$OUT" \
  --context "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), PostgreSQL $PGVER ($PGSET), commit $(git -C "$ROOT" rev-parse --short HEAD), $N trades of gen_trades.py, pm-loadgen with $CONNS connections${PM_BENCH_DAEMON_ARGS:+, daemon options $PM_BENCH_DAEMON_ARGS}"

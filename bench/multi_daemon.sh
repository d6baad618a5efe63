#!/usr/bin/env bash
# bench/multi_daemon.sh: combined throughput of N = 1, 2, 3 pm-ingestd daemons writing into one
# PostgreSQL database (issue 17), and where it stops scaling.
#
#   bench/multi_daemon.sh     # by hand, machine otherwise idle; ~5 minutes; not part of the tests
#
# For each N (and PM_MULTI_REPS runs): a fresh database pm_bench_multi on the private cluster
# (scripts/pg.sh), N daemons (own --instance-id, log directory, socket), N pm-loadgen processes
# started together, each sending PM_MULTI_EVENTS / N distinct trades (its own seed) as fast as its
# daemon acks. Combined rate = all events / (first line sent .. last row visible in PostgreSQL).
# Also printed: CPU seconds used by the daemons and by PostgreSQL during the run, and what
# PostgreSQL's active sessions of that database were waiting on (pg_stat_activity sampled every
# 100 ms: "CPU" = not waiting). Appends a Markdown table to stdout.
# Settings: PM_MULTI_EVENTS (300000) PM_MULTI_REPS (2) PM_MULTI_CONNECTIONS (2 per loadgen) PM_MULTI_N ("1 2 3")
#           PM_BUILD_DIR (build) PM_MULTI_DAEMON_ARGS (extra daemon options)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
EVENTS=${PM_MULTI_EVENTS:-300000}
REPS=${PM_MULTI_REPS:-2}
CONNS=${PM_MULTI_CONNECTIONS:-2}
BUILD=${PM_BUILD_DIR:-$ROOT/build}
DAEMON_ARGS=(${PM_MULTI_DAEMON_ARGS:-})
WORK=$ROOT/var/bench-multi
# The URLs (a password in them) stay off command lines, where ps shows them: psql gets them
# through pg_psql (libpq environment variables), the executables as DATABASE_URL, pm-ingestctl as
# PM_INGESTD_DATABASE_URL (which it reads before DATABASE_URL).
# shellcheck source=scripts/lib_pg_env.sh
source "$ROOT/scripts/lib_pg_env.sh"
ADMIN_URL=${DATABASE_URL:-$(scripts/pg.sh url)}
URL=$(pg_url_with_db "$ADMIN_URL" pm_bench_multi)
pg_prepare_url "$ADMIN_URL" "$URL"  # once, here: not in the sampler's subshell
INGESTD=$BUILD/daemon/pm-ingestd CTL=$BUILD/daemon/pm-ingestctl LOADGEN=$BUILD/daemon/pm-loadgen
for b in "$INGESTD" "$CTL" "$LOADGEN"; do [ -x "$b" ] || { echo "multi_daemon: $b missing: build first (cmake --build $BUILD)" >&2; exit 2; }; done

log() { echo "multi_daemon: $*" >&2; }
now() { date +%s.%N; }
TICKS=$(getconf CLK_TCK)
# CPU seconds (user + system) of one process, and of every postgres process now alive.
cpu_of() { awk -v t="$TICKS" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_cpu() { { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v t="$TICKS" '$2 == "(postgres)" {s += $14 + $15} END {printf "%.2f", s / t}'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

declare -a PIDS HELPERS  # the daemons; the sampler and the loadgens of the run in progress
stop_daemons() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true; done; for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done; PIDS=(); }
stop_helpers() { for p in "${HELPERS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; for p in "${HELPERS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done; HELPERS=(); }
# A failed step (set -e) left the sampler polling for ever (and the next DROP DATABASE failing).
trap 'stop_helpers; stop_daemons' EXIT

run_once() {
  local n=$1 rep=$2
  pg_psql "$ADMIN_URL" -XAtqc "DROP DATABASE IF EXISTS pm_bench_multi" >/dev/null
  pg_psql "$ADMIN_URL" -XAtqc "CREATE DATABASE pm_bench_multi" >/dev/null
  PM_INGESTD_DATABASE_URL="$URL" "$CTL" migrate >/dev/null
  rm -rf "$WORK" && mkdir -p "$WORK"
  PIDS=()
  for i in $(seq 1 "$n"); do
    DATABASE_URL=$URL "$INGESTD" --socket "$WORK/d$i.sock" --wal-dir "$WORK/wal$i" --instance-id "d$i" \
      --metrics-listen "127.0.0.1:$(free_port)" "${DAEMON_ARGS[@]}" > "$WORK/d$i.log" 2>&1 &
    PIDS+=($!)
  done
  for i in $(seq 1 "$n"); do for _ in $(seq 100); do [ -S "$WORK/d$i.sock" ] && break; sleep 0.05; done; done
  ( while :; do
      pg_psql "$URL" -XAtqc "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') FROM pg_stat_activity
                          WHERE datname = 'pm_bench_multi' AND state = 'active' AND pid <> pg_backend_pid()" 2>/dev/null
      sleep 0.1
    done ) > "$WORK/waits" &
  local sampler=$!
  HELPERS=("$sampler")
  local pg0 d0=0 t0 t1 per=$((EVENTS / n)) lg=()
  pg0=$(pg_cpu)
  t0=$(now)
  for i in $(seq 1 "$n"); do
    "$LOADGEN" --socket "$WORK/d$i.sock" --rate unlimited --count "$per" --connections "$CONNS" --seed "$((i * 7919))" \
      --start-timestamp 1700000000 --quiet --json > "$WORK/lg$i.json" &
    lg+=($!)
    HELPERS+=($!)
  done
  for p in "${lg[@]}"; do wait "$p"; done
  HELPERS=("$sampler")  # the loadgens are reaped: their pids may be reused
  local expected=$((per * n)) stored=0
  for _ in $(seq 1200); do
    stored=$(pg_psql "$URL" -XAtqc "SELECT count(*) FROM polymarket_trades")
    [ "$stored" -ge "$expected" ] && break
    sleep 0.05
  done
  t1=$(now)
  [ "$stored" -ge "$expected" ] || { log "only $stored of $expected rows stored after 60 s"; exit 1; }
  stop_helpers
  local pg1 dcpu=0
  pg1=$(pg_cpu)
  for p in "${PIDS[@]}"; do dcpu=$(awk -v a="$dcpu" -v b="$(cpu_of "$p")" 'BEGIN {print a + b}'); done
  stop_daemons
  local secs rate waits
  secs=$(awk -v a="$t1" -v b="$t0" 'BEGIN {printf "%.2f", a - b}')
  rate=$(awk -v e="$expected" -v s="$secs" 'BEGIN {printf "%.0f", e / s}')
  waits=$(sort "$WORK/waits" | uniq -c | sort -rn | head -4 | awk '{printf "%s%s %s", sep, $2, $1; sep=", "}')
  echo "| $n | $rep | $expected | $stored | $secs | $rate | $dcpu | $(awk -v a="$pg1" -v b="$pg0" 'BEGIN {print a - b}') | $waits |"
}

echo "| daemons | run | events | rows stored | seconds | rows/s combined | daemons' CPU s | PostgreSQL CPU s | PostgreSQL sessions waiting on (samples) |"
echo "|---|---|---|---|---|---|---|---|---|"
for n in ${PM_MULTI_N:-1 2 3}; do for rep in $(seq 1 "$REPS"); do log "N=$n run $rep"; run_once "$n" "$rep"; done; done

#!/usr/bin/env bash
# libFuzzer runs of the protocol parsers (v1 and the Polymarket payloads), the log record codec and the log's readers and recovery
# (tests/fuzz/).
#   scripts/fuzz.sh                    smoke run, 30 s per target (CI)
#   scripts/fuzz.sh 1200               long run, 20 minutes per target
#   scripts/fuzz.sh 0 -runs=10000000   a fixed number of executions per target instead of a time
# Arguments after the first go to every target (libFuzzer flags such as -runs=N, -jobs=N).
# Builds the targets with clang in their own build directory ($PM_FUZZ_BUILD_DIR, default
# build-fuzz: clang-14, -DPM_FUZZ=ON -DPM_BUILD_TESTS=OFF, ASan + UBSan + libFuzzer),
# then runs the targets one after the other, each from a scratch copy of its committed seed corpus
# (tests/fuzz/corpus/<target>/, never grown by a run). Prints executions, exec/s and coverage of
# each target and fails on any crash, leak, sanitizer report or failed check; the input that
# failed is kept in $BUILD/fuzz-runs/<target>/crash-* (or leak-*, timeout-*, oom-*), with the log.
# Reproduce one with: $BUILD/tests/fuzz/<target> <file>.
# PM_BUILD_WRAPPER is put before the configure and build commands (e.g. to serialise builds on a
# shared machine: PM_BUILD_WRAPPER="flock /tmp/pm-build.lock nice -n 10").
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

SECONDS_PER_TARGET=${1:-30}
shift $(( $# > 0 ? 1 : 0 ))
EXTRA=("$@")
TARGETS=(fuzz_line_parser fuzz_polymarket_payloads fuzz_event_codec fuzz_log_reader)
BUILD_DIR=${PM_FUZZ_BUILD_DIR:-build-fuzz}
read -r -a WRAP <<< "${PM_BUILD_WRAPPER:-}"

scripts/setup.sh
"${WRAP[@]}" cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER="${PM_FUZZ_CXX:-clang++-14}" -DPM_FUZZ=ON -DPM_BUILD_TESTS=OFF >/dev/null
"${WRAP[@]}" cmake --build "$BUILD_DIR" -j2 --target "${TARGETS[@]}"

RUNS="$ROOT/$BUILD_DIR/fuzz-runs"
failed=0
for t in "${TARGETS[@]}"; do
  work="$RUNS/$t"
  rm -rf "$work"
  mkdir -p "$work/corpus"
  cp "tests/fuzz/corpus/$t/"* "$work/corpus/"
  args=(-max_total_time="$SECONDS_PER_TARGET" -timeout=10 -print_final_stats=1 -artifact_prefix="$work/")
  [ -f "tests/fuzz/$t.dict" ] && args+=(-dict="tests/fuzz/$t.dict")
  echo "fuzz: $t for ${SECONDS_PER_TARGET}s ${EXTRA[*]:-} (log $work/fuzz.log)"
  start=$(date +%s)
  rc=0
  "$BUILD_DIR/tests/fuzz/$t" "${args[@]}" "${EXTRA[@]}" "$work/corpus" >"$work/fuzz.log" 2>&1 || rc=$?
  elapsed=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/fuzz.log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$work/fuzz.log" | tail -1)
  echo "fuzz: $t: exit $rc, ${execs:-?} executions in ${elapsed}s (${rate:-?} exec/s), ${cov:-no coverage line}, corpus $(ls "$work/corpus" | wc -l) inputs"
  artifacts=$(find "$work" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \))
  if [ "$rc" -ne 0 ] || [ -n "$artifacts" ]; then
    failed=1
    echo "fuzz: $t FAILED; the end of its log:" >&2
    tail -60 "$work/fuzz.log" >&2
    [ -n "$artifacts" ] && echo "fuzz: failing inputs: $artifacts" >&2
  fi
done
exit "$failed"

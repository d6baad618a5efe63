#!/usr/bin/env bash
# Sanitizer builds and their test runs (g++; every target instrumented, the daemon included).
#   scripts/sanitize.sh asan   build-asan: -fsanitize=address,undefined, the whole ctest suite
#   scripts/sanitize.sh tsan   build-tsan: -fsanitize=thread, the suites of ingest_unit_tests,
#                              writer_lanes_tests, power_loss_tests and e2e_tests (the threaded
#                              ingest path)
# Extra arguments go to ctest (e.g. -R WalTest). Like test.sh it installs the packages, starts the
# private PostgreSQL (scripts/prepare.sh) and builds with -j2. Every sanitizer report, from a test
# binary or from a daemon a test started, is written to $BUILD/sanitizer-logs/ (log_path), so a
# report from a child process fails the run even when its test passed; they are printed at the end.
# PM_BUILD_WRAPPER is put before the configure and build commands (see prepare.sh).
set -euo pipefail
mode=${1:-}
shift $(( $# > 0 ? 1 : 0 ))
case "$mode" in
  asan) sanitizer=address; tests=() ;;
  tsan) sanitizer=thread; tests=(-L '^(ingest_unit_tests|writer_lanes_tests|power_loss_tests|e2e_tests)$') ;;
  *) sed -n '2,11p' "$0"; exit 2 ;;
esac
# Nothing of an earlier run may be taken for this one's (test.sh's failure summary reads these),
# even when the configure or the build fails before ctest runs.
earlier="$(dirname "$0")/../build-$mode"
rm -rf "$earlier/sanitizer-logs" "$earlier/Testing/Temporary/LastTestsFailed.log"
export PM_BUILD_DIR=build-$mode
export PM_CMAKE_ARGS="-DPM_SANITIZE=$sanitizer"
source "$(dirname "$0")/prepare.sh"
read -r -a WRAP <<< "${PM_BUILD_WRAPPER:-}"
logs="$ROOT/$BUILD_DIR/sanitizer-logs"
if [ "$mode" = tsan ]; then
  "${WRAP[@]}" cmake --build "$BUILD_DIR" -j2 --target ingest_unit_tests writer_lanes_tests power_loss_tests e2e_tests
else
  "${WRAP[@]}" cmake --build "$BUILD_DIR" -j2
fi

mkdir -p "$logs"
# -fno-sanitize-recover=undefined already stops at the first UB; print_stacktrace says where.
export ASAN_OPTIONS="log_path=$logs/asan:detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
# Reports from system libraries that we cannot fix, each justified in scripts/lsan.supp and
# scripts/tsan.supp.
export LSAN_OPTIONS="suppressions=$ROOT/scripts/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export UBSAN_OPTIONS="log_path=$logs/ubsan:print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export TSAN_OPTIONS="log_path=$logs/tsan:suppressions=$ROOT/scripts/tsan.supp:print_suppressions=0:second_deadlock_stack=1:history_size=4${TSAN_OPTIONS:+:$TSAN_OPTIONS}"

cd "$BUILD_DIR"
rc=0
ctest --output-on-failure --no-tests=error -j2 --timeout 900 "${tests[@]}" "$@" || rc=$?
reports=$(find "$logs" -type f | sort)
if [ -n "$reports" ]; then
  echo "sanitize: $(echo "$reports" | wc -l) sanitizer report file(s) in $logs:" >&2
  while IFS= read -r f; do echo "=== $f" >&2; head -80 "$f" >&2; done <<<"$reports"  # paths may hold spaces
  rc=1
fi
[ "$rc" -eq 0 ] && echo "sanitize: $mode clean"
exit "$rc"

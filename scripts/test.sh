#!/usr/bin/env bash
# The test command: installs what is needed, starts the private PostgreSQL, builds with -j2 and
# runs every GoogleTest case through CTest. With no arguments it first runs the fuzz smoke run
# (scripts/fuzz.sh, 30 s per target), the ASan+UBSan build of the whole suite and the TSan build
# of the threaded ingest path (scripts/sanitize.sh), then the ordinary suite, then the Python
# client's pytest suite (clients/python/tests, against the daemon just built), whose summary is the
# last thing printed; it fails if any of them failed, and then ends with a short summary of each
# failed sanitizer run and of a failed ordinary suite (scripts/failure_summary.sh: the failed
# cases, their messages, the sanitizer reports; fuzz.sh and pytest print their own causes), or the
# first errors of a failed ordinary build (which skips the ordinary suite and pytest).
# Extra arguments go to the ordinary suite's ctest alone, without the other runs (e.g.
# scripts/test.sh -R Wal).
# PM_SOAK_TESTS=ON also registers the long soak tests; PM_SKIP_SANITIZERS=1 skips fuzzing and
# the sanitizer builds.
set -euo pipefail
case "${1:-}" in -h | --help) sed -n '2,14p' "$0"; exit 0 ;; esac
source "$(dirname "$0")/prepare.sh"
failed=()
if [ $# -eq 0 ] && [ "${PM_SKIP_SANITIZERS:-0}" != 1 ]; then
  for run in "scripts/fuzz.sh" "scripts/sanitize.sh asan" "scripts/sanitize.sh tsan"; do
    echo "test.sh: $run"
    # shellcheck disable=SC2086
    ($run) || failed+=("$run")
  done
fi
# A failed ordinary build skips its suite and pytest, but not the summaries below of the runs before.
rc=0
built=1
cmake --build "$BUILD_DIR" -j2 || { built=0; failed+=("cmake --build $BUILD_DIR"); }
if [ "$built" = 1 ]; then
  BIN_DIR="$(cd "$BUILD_DIR" && pwd)/daemon"
  (cd "$BUILD_DIR" && ctest --output-on-failure --no-tests=error -j2 --timeout 900 "$@") || rc=$?
fi
if [ $# -eq 0 ] && [ "$built" = 1 ]; then
  # Debian's interpreter, where setup.sh installed python3-pytest (a python3 earlier on PATH,
  # pyenv's say, would not have it); PM_PYTHON overrides.
  echo "test.sh: python3 -m pytest -q clients/python/tests"
  PM_TEST_INGESTD_BIN="$BIN_DIR/pm-ingestd" PM_TEST_INGESTCTL_BIN="$BIN_DIR/pm-ingestctl" \
    "${PM_PYTHON:-/usr/bin/python3}" -m pytest -q -p no:cacheprovider clients/python/tests \
    || failed+=("pytest clients/python/tests")
fi
# The causes again, last: a CI page that shows only the tail of the output still names them.
for run in "${failed[@]}"; do
  case "$run" in
    "scripts/sanitize.sh "*) scripts/failure_summary.sh "build-${run#scripts/sanitize.sh }" >&2 ;;  # its build dir
    "cmake --build "*)  # the build again, alone: its first errors, without the other jobs' lines between
      { echo "=== the ordinary build's first errors"; cmake --build "$BUILD_DIR" -j1 2>&1 | grep -m 20 -E 'error|Error' || true; } >&2 ;;
  esac
done
[ "$rc" -eq 0 ] || scripts/failure_summary.sh "$BUILD_DIR" >&2
if [ ${#failed[@]} -gt 0 ]; then
  echo "test.sh: FAILED: ${failed[*]} (see above)" >&2
  exit 1
fi
exit "$rc"

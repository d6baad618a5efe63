#!/usr/bin/env bash
# The test command: installs what is needed, starts the private PostgreSQL, builds with -j2 and
# runs every GoogleTest case through CTest. With no arguments it first runs the fuzz smoke run
# (scripts/fuzz.sh, 30 s per target), the ASan+UBSan build of the whole suite and the TSan build
# of the threaded ingest path (scripts/sanitize.sh), then the ordinary suite, whose summary is the
# last thing printed; it fails if any of them failed. Extra arguments go to the ordinary suite's
# ctest alone, without the other runs (e.g. scripts/test.sh -R Wal).
# PM_SOAK_TESTS=ON also registers the long soak tests; PM_SKIP_SANITIZERS=1 skips fuzzing and
# the sanitizer builds.
set -euo pipefail
source "$(dirname "$0")/prepare.sh"
failed=()
if [ $# -eq 0 ] && [ "${PM_SKIP_SANITIZERS:-0}" != 1 ]; then
  for run in "scripts/fuzz.sh" "scripts/sanitize.sh asan" "scripts/sanitize.sh tsan"; do
    echo "test.sh: $run"
    # shellcheck disable=SC2086
    ($run) || failed+=("$run")
  done
fi
cmake --build "$BUILD_DIR" -j2
cd "$BUILD_DIR"
rc=0
ctest --output-on-failure -j2 --timeout 900 "$@" || rc=$?
if [ ${#failed[@]} -gt 0 ]; then
  echo "test.sh: FAILED: ${failed[*]} (see above)" >&2
  exit 1
fi
exit "$rc"

#!/usr/bin/env bash
# The test command: installs what is needed, starts the private PostgreSQL, builds with -j2 and
# runs every GoogleTest case through CTest. Extra arguments go to ctest (e.g. -R Wal).
# PM_SOAK_TESTS=ON also registers the long soak tests.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

scripts/setup.sh
scripts/pg.sh start
export DATABASE_URL=${DATABASE_URL:-$(scripts/pg.sh url)}

BUILD_DIR=${PM_BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPM_SOAK_TESTS="${PM_SOAK_TESTS:-OFF}" >/dev/null
cmake --build "$BUILD_DIR" -j2
cd "$BUILD_DIR"
ctest --output-on-failure -j2 --timeout 900 "$@"

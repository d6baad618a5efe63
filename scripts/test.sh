#!/usr/bin/env bash
# The test command: installs what is needed, starts the private PostgreSQL, builds with -j2 and
# runs every GoogleTest case through CTest. Extra arguments go to ctest (e.g. -R Wal).
# PM_SOAK_TESTS=ON also registers the long soak tests.
set -euo pipefail
source "$(dirname "$0")/prepare.sh"
cmake --build "$BUILD_DIR" -j2
cd "$BUILD_DIR"
ctest --output-on-failure -j2 --timeout 900 "$@"

# Shared by run.sh and test.sh (sourced, not run): installs the packages, starts the private
# PostgreSQL, exports DATABASE_URL (unless set) and configures the build in $BUILD_DIR.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
scripts/setup.sh
scripts/pg.sh start
export DATABASE_URL=${DATABASE_URL:-$(scripts/pg.sh url)}
BUILD_DIR=${PM_BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPM_SOAK_TESTS="${PM_SOAK_TESTS:-OFF}" >/dev/null

# Shared by run.sh and test.sh (sourced, not run): installs the packages, starts the private
# PostgreSQL, exports DATABASE_URL (unless set) and configures the build in $BUILD_DIR.
# Optional: PM_CMAKE_ARGS (more configure arguments, space-separated, e.g. -DPM_SANITIZE=address);
# PM_BUILD_WRAPPER (a command put before cmake, e.g. "flock /tmp/pm-build.lock nice -n 10").
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# runuser and tc are in /usr/sbin, which a root shell from plain `su` lacks: pg.sh, the tests'
# private clusters and network namespaces, and the benchmark call them.
export PATH="$PATH:/usr/sbin:/sbin"
scripts/setup.sh
scripts/pg.sh start
export DATABASE_URL=${DATABASE_URL:-$(scripts/pg.sh url)}
BUILD_DIR=${PM_BUILD_DIR:-build}
read -r -a PM_CMAKE_EXTRA <<< "${PM_CMAKE_ARGS:-}"
read -r -a PM_WRAP <<< "${PM_BUILD_WRAPPER:-}"
"${PM_WRAP[@]}" cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPM_SOAK_TESTS="${PM_SOAK_TESTS:-OFF}" \
  -DPM_BUILD_TESTS=ON -DPM_SANITIZE= "${PM_CMAKE_EXTRA[@]}" >/dev/null
# (The two cached values are set each time: a build directory configured for an install
# (-DPM_BUILD_TESTS=OFF) or by another mode kept them, and the suite ran without its tests.)

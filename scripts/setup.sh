#!/usr/bin/env bash
# Installs every Debian package pm-ingestd needs to build, test and run locally.
# Idempotent: packages already present are skipped; `apt-get update` runs at most once per call.
#   scripts/setup.sh               everything: build, the private PostgreSQL, tests, benchmarks
#   scripts/setup.sh --build-only  only what building pm-ingestd and pm-ingestctl needs
#                                  (cmake -DPM_BUILD_TESTS=OFF), for a production host: no
#                                  PostgreSQL server, Prometheus, compilers for fuzzing or tools
#   --list (after either)          print the packages instead of installing them
set -euo pipefail

BUILD_PACKAGES=(
  build-essential cmake pkg-config ca-certificates
  libpqxx-dev libpq-dev                      # PostgreSQL client (libpqxx 6.4 over libpq)
  libconcurrentqueue-dev                     # moodycamel lock-free queue
  libboost-program-options-dev               # option parsing (flags, config file, environment)
  libspdlog-dev libfmt-dev                   # logging
  prometheus-cpp-dev                         # metrics registry and its text serialiser
  libcivetweb-dev                            # the HTTP server of /metrics, /healthz, /readyz (metrics/http_endpoint)
  libsimdjson-dev                            # JSON parsing of producer lines
  libzstd-dev                                # compression of archived log segments (--archive-dir)
  libsystemd-dev                             # sd_notify, sd_listen_fds
)
DEVELOPMENT_PACKAGES=(
  git
  postgresql-15 postgresql-client-15         # private cluster for tests and the local default
  prometheus                                 # tests: promtool (metrics lint, rule tests) and a real Prometheus for the dashboard
  systemd                                    # tests: systemd-analyze verify/security, systemd-socket-activate
  systemd-container                          # tests: systemd-nspawn boots a real systemd with the shipped units (ops/booted_container.h)
  libgtest-dev libgmock-dev                  # tests
  clang-14 libclang-rt-14-dev                # scripts/fuzz.sh: libFuzzer targets (clang; libFuzzer, ASan, UBSan runtimes)
  socat python3                              # examples and end-to-end tests talk to the socket
  util-linux procps                          # runuser, mount, ps, unshare used by scripts and tests
  iproute2                                   # tests: ip and tc black-hole a port in a network namespace of their own (private_network.h)
  python3-asyncpg                            # bench/run.sh: the seed's asyncpg anchor (../shared/bench)
  python3-matplotlib                         # bench/run.sh: the results plot (bench/results.png)
  linux-perf                                 # bench/profile.sh: where the CPU goes, by thread
  python3-pytest                             # tests: the Python client's suite (clients/python/tests)
  python3-pip python3-setuptools python3-wheel  # tests: clients/python installs with pip (offline, --no-build-isolation)
)

PACKAGES=("${BUILD_PACKAGES[@]}" "${DEVELOPMENT_PACKAGES[@]}")
for arg in "$@"; do
  case "$arg" in
    --build-only) PACKAGES=("${BUILD_PACKAGES[@]}") ;;
    --list) ;;
    *) echo "setup: unknown argument '$arg' (--build-only, --list)" >&2; exit 2 ;;
  esac
done
for arg in "$@"; do
  if [ "$arg" = --list ]; then printf '%s\n' "${PACKAGES[@]}"; exit 0; fi
done

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

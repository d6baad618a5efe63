#!/usr/bin/env bash
# scripts/psql.sh [PSQL ARGUMENTS...]: psql on $DATABASE_URL, else on the private cluster of
# scripts/pg.sh, without the URL on psql's command line (ps shows a command line to every user of
# the machine, password included): scripts/lib_pg_env.sh gives it to psql as libpq environment
# variables. E.g. scripts/psql.sh -c 'SELECT * FROM polymarket_trades'
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib_pg_env.sh
source "$ROOT/scripts/lib_pg_env.sh"
pg_psql "${DATABASE_URL:-$("$ROOT/scripts/pg.sh" url)}" "$@"

#!/usr/bin/env bash
# The run command: installs what is needed, starts the private PostgreSQL, builds, applies the
# migrations and runs pm-ingestd in the foreground on a local socket. Ctrl-C stops it cleanly.
# Extra arguments go to pm-ingestd (e.g. --log-level debug); --socket, --wal-dir and --metrics-listen
# are this script's (pm-ingestd refuses an option given twice); PM_METRICS_LISTEN sets the last.
set -euo pipefail
case "${1:-}" in -h | --help) sed -n '2,5p' "$0"; echo "(pm-ingestd's own options: build/daemon/pm-ingestd --help)"; exit 0 ;; esac
OWN_DATABASE=${DATABASE_URL:+yes}  # prepare.sh keeps a DATABASE_URL of the caller's, else sets the private cluster's
source "$(dirname "$0")/prepare.sh"
# shellcheck source=scripts/lib_pg_env.sh
source "$ROOT/scripts/lib_pg_env.sh"
cmake --build "$BUILD_DIR" -j2 --target pm-ingestd pm-ingestctl

"$BUILD_DIR/daemon/pm-ingestctl" migrate

mkdir -p var/run var/wal
SOCKET="$ROOT/var/run/ingest.sock"
BUILD_ABS=$(cd "$BUILD_DIR" && pwd)  # the hint's commands work from any directory of another terminal
METRICS=${PM_METRICS_LISTEN:-127.0.0.1:9464}
# The database the hint names: host, port, database and user, never the password.
DB_DESCRIPTION=$(pg_describe_url "$DATABASE_URL" 2>/dev/null) || DB_DESCRIPTION="the database of DATABASE_URL"
if [ -n "$OWN_DATABASE" ]; then WHICH="$DB_DESCRIPTION, from your DATABASE_URL: give scripts/psql.sh the same DATABASE_URL in its environment"
else WHICH="$DB_DESCRIPTION: the private cluster of scripts/pg.sh"; fi
cat <<INFO

pm-ingestd is starting in the foreground (Ctrl-C stops it).
  socket   $SOCKET
  log      $ROOT/var/wal
  metrics  http://$METRICS/metrics
Send a trade from another terminal (pm-ingestctl send waits for the ack and says what happened):
  echo '{"type":"trade","condition_id":"0xabc","trade_id":"t1","token_id":"tok","price":"0.95","size":10,"side":"buy","timestamp":'\$(date +%s)'}' | $BUILD_ABS/daemon/pm-ingestctl send --socket $SOCKET
See it stored ($WHICH):
  $ROOT/scripts/psql.sh -c 'SELECT * FROM polymarket_trades'

INFO
exec "$BUILD_DIR/daemon/pm-ingestd" --socket "$SOCKET" --wal-dir "$ROOT/var/wal" --metrics-listen "$METRICS" "$@"

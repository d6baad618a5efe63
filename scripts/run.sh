#!/usr/bin/env bash
# The run command: installs what is needed, starts the private PostgreSQL, builds, applies the
# migrations and runs pm-ingestd in the foreground on a local socket. Ctrl-C stops it cleanly.
# Extra arguments go to pm-ingestd (e.g. --log-level debug).
set -euo pipefail
source "$(dirname "$0")/prepare.sh"
cmake --build "$BUILD_DIR" -j2 --target pm-ingestd pm-ingestctl

"$BUILD_DIR/daemon/pm-ingestctl" migrate

mkdir -p var/run var/wal
SOCKET="$ROOT/var/run/ingest.sock"
METRICS=${PM_METRICS_LISTEN:-127.0.0.1:9464}
cat <<INFO

pm-ingestd is starting in the foreground (Ctrl-C stops it).
  socket   $SOCKET
  log      $ROOT/var/wal
  metrics  http://$METRICS/metrics
Send a trade from another terminal (pm-ingestctl send waits for the ack and says what happened):
  echo '{"type":"trade","condition_id":"0xabc","trade_id":"t1","token_id":"tok","price":"0.95","size":10,"side":"buy","timestamp":'\$(date +%s)'}' | $BUILD_DIR/daemon/pm-ingestctl send --socket $SOCKET
See it stored:
  PGPASSWORD=predict psql -h localhost -p ${PM_PG_PORT:-5433} -U predict predict -c 'SELECT * FROM polymarket_trades'

INFO
exec "$BUILD_DIR/daemon/pm-ingestd" --socket "$SOCKET" --wal-dir "$ROOT/var/wal" --metrics-listen "$METRICS" "$@"

#!/usr/bin/env bash
# Private PostgreSQL 15 cluster for tests and the local default run.
#   scripts/pg.sh start    create (first time) and start the cluster; idempotent
#   scripts/pg.sh stop     stop it (fast shutdown); idempotent
#   scripts/pg.sh status   print whether it runs
#   scripts/pg.sh remove   stop it and delete its files
#   scripts/pg.sh url      print the connection URL
# Cluster files live in var/pg under the project (git-ignored); if the `postgres` user cannot reach
# that path (running as root in a private home, say), under /var/tmp/pm-ingestd-pg-<hash>.
# Port 5433 (PM_PG_PORT overrides), role and database predict/predict with CREATEDB so that test
# suites can create isolated databases. Works as root (the server runs as `postgres`) and as an
# ordinary user (the server runs as that user).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PORT=${PM_PG_PORT:-5433}
PGBIN=${PM_PG_BIN:-/usr/lib/postgresql/15/bin}
ROLE=predict
PASSWORD=predict
DB=predict

# runuser is in /usr/sbin, which a root shell from plain `su` does not have in its PATH.
export PATH="$PATH:/usr/sbin:/sbin"
if [ "$(id -u)" -eq 0 ]; then RUN_AS=(runuser -u postgres --); OWNER=postgres; else RUN_AS=(); OWNER=$(id -un); fi

cluster_dir() {
  if [ -n "${PM_PG_DIR:-}" ]; then echo "$PM_PG_DIR"; return; fi
  local dir="$ROOT/var/pg"
  if [ "$(id -u)" -eq 0 ]; then
    mkdir -p "$ROOT/var"
    if ! runuser -u postgres -- test -x "$ROOT/var" 2>/dev/null; then
      dir="/var/tmp/pm-ingestd-pg-$(echo -n "$ROOT" | md5sum | cut -c1-12)"
      # A predictable name in a directory everyone may write: one made by another user is refused.
      if [ -L "$dir" ] || { [ -e "$dir" ] && [ "$(stat -c %U "$dir")" != postgres ]; }; then
        echo "pg.sh: $dir exists and is not a directory of the postgres user's; remove it or set PM_PG_DIR" >&2
        exit 1
      fi
    fi
  fi
  echo "$dir"
}

DIR=$(cluster_dir)
DATA="$DIR/data"
SOCKDIR="$DIR/run"
LOG="$DIR/postgresql.log"

pg() { "${RUN_AS[@]}" "$@"; }

is_running() { pg "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

init_cluster() {
  [ -f "$DATA/PG_VERSION" ] && return 0
  mkdir -p "$DIR" "$SOCKDIR"
  [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$DIR"
  chmod 700 "$DIR"
  # The superuser gets no password: it is reached only through the Unix socket in $SOCKDIR, which
  # only the cluster's owner can open (a password on TCP would let any local user in as superuser).
  pg "$PGBIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
     -E UTF8 --locale=C.UTF-8 >/dev/null
  cat >> "$DATA/postgresql.conf" <<CONF
# pm-ingestd private cluster
listen_addresses = 'localhost'
port = $PORT
unix_socket_directories = '$SOCKDIR'
max_connections = 200
fsync = on
CONF
}

bootstrap_role() {
  local psql=(pg "$PGBIN/../bin/psql" -X -q -h "$SOCKDIR" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1)
  # The password goes on psql's stdin, not its command line (ps shows that).
  "${psql[@]}" -f - >/dev/null <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
    CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD';
  END IF; END \$\$;
SQL
  # The benchmark starts every writer from a fresh checkpoint (PostgreSQL 15's pg_checkpoint role).
  "${psql[@]}" -c "SET client_min_messages TO warning; GRANT pg_checkpoint TO $ROLE" >/dev/null
  if ! "${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
    "${psql[@]}" -c "CREATE DATABASE $DB OWNER $ROLE" >/dev/null
  fi
}

start() {
  if ! { [ -f "$DATA/PG_VERSION" ] && is_running; } && "$PGBIN/pg_isready" -q -h localhost -p "$PORT" 2>/dev/null; then
    echo "pg.sh: another server already listens on port $PORT (not the cluster in $DATA);" \
         "stop it, or choose another port with PM_PG_PORT=NNNN" >&2
    exit 1
  fi
  init_cluster
  # Running already, on the port of an earlier PM_PG_PORT: say so (the role set-up and `url` would
  # name a port nothing listens on).
  if is_running; then
    local running_port
    running_port=$(sed -n 4p "$DATA/postmaster.pid" 2>/dev/null || true)
    if [ -n "$running_port" ] && [ "$running_port" != "$PORT" ]; then
      echo "pg.sh: the cluster in $DATA is running on port $running_port, not $PORT: stop it first" \
           "(PM_PG_PORT=$running_port scripts/pg.sh stop) or use PM_PG_PORT=$running_port" >&2
      exit 1
    fi
  fi
  if ! is_running; then
    # The port on the command line too: postgresql.conf holds the one of the first start, and a
    # PM_PG_PORT given later (as the message above advises) was ignored. The socket directory too:
    # a clone moved or renamed since kept the old one, where the server could not start.
    mkdir -p "$SOCKDIR"; [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$SOCKDIR"
    pg "$PGBIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 -o "-p $PORT -k '$SOCKDIR'" start >/dev/null || { tail -20 "$LOG" >&2; exit 1; }
  fi
  bootstrap_role
  echo "postgres: running on localhost:$PORT (data $DATA)"
}

stop() {
  if [ -f "$DATA/PG_VERSION" ] && is_running; then
    pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
  fi
  echo "postgres: stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if [ -f "$DATA/PG_VERSION" ] && is_running; then echo "running ($DATA, port $PORT)"; else echo "not running"; exit 3; fi ;;
  remove) stop; rm -rf "$DIR"; echo "postgres: removed $DIR" ;;
  url) echo "postgresql://$ROLE:$PASSWORD@localhost:$PORT/$DB" ;;
  *) sed -n '2,13p' "$0"; exit 2 ;;
esac

#!/usr/bin/env bash
# bench/wait_events.sh: what PostgreSQL's sessions on one database spend their time on, sampled.
#
#   DATABASE_URL=postgresql://... bench/wait_events.sh [SECONDS] [SAMPLES_PER_SECOND]
#
# One session of its own reads pg_stat_activity (every client backend of that database that is
# active or idle in a transaction, except itself) SAMPLES_PER_SECOND times a second (default 200)
# for SECONDS (default 5), and prints how many samples saw each (wait event, start of the
# statement): `cpu` where the backend waited on nothing (running, or waiting for a core). Under
# load it says how the writer's connections split their time: COPY on the CPU, relation extension
# (IO:DataFileExtend, Lock:extend), WAL (WALWrite), waiting for the batch before to commit
# (Lock:advisory), or for the daemon (Client:ClientRead). Run it beside a load; the sampler is a
# backend on the same machine too (a few per cent of a core at 200 samples a second).
set -euo pipefail
SECONDS_TO_SAMPLE=${1:-5}
RATE=${2:-200}
: "${DATABASE_URL:?set DATABASE_URL to the database to watch}"
SAMPLES=$(python3 -c "print(max(1, round($SECONDS_TO_SAMPLE * $RATE)))")
PAUSE=$(python3 -c "print(1 / $RATE)")
# Not `psql "$DATABASE_URL"`: ps would show the URL, password included, for the whole sampling.
# shellcheck source=scripts/lib_pg_env.sh
source "$(dirname "$0")/../scripts/lib_pg_env.sh"
pg_psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE TEMP TABLE pm_wait_samples (sample int, wait text, statement text);
DO \$\$
BEGIN
  FOR i IN 1..$SAMPLES LOOP
    PERFORM pg_stat_clear_snapshot();  -- else the transaction sees one snapshot of the activity
    INSERT INTO pm_wait_samples
      SELECT i, coalesce(wait_event_type || ':' || wait_event, 'cpu'),
             left(regexp_replace(query, '\s+', ' ', 'g'), 70)
        FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
         AND state IN ('active', 'idle in transaction');
    PERFORM pg_sleep($PAUSE);
  END LOOP;
END
\$\$;
\echo samples taken, and per (wait, statement) the samples that saw it (a session in several samples counts in each)
SELECT count(DISTINCT sample) AS samples_with_a_session FROM pm_wait_samples;
SELECT count(*) AS seen, wait, statement FROM pm_wait_samples GROUP BY wait, statement ORDER BY 1 DESC LIMIT 30;
SQL

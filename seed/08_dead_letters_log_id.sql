-- 08_dead_letters_log_id.sql: a dead letter names the log its lsn belongs to. LSNs are numbered per
-- log: after the documented recovery from a damaged log (move the directory away,
-- `pm-ingestctl checkpoint-reset`, start with an empty --wal-dir) the new log numbers from 1 again.
-- With the key (instance_id, lsn) the dead letter of the new log's lsn N met the old log's row of
-- lsn N and was dropped (ON CONFLICT DO NOTHING) while the checkpoint moved past the event: it was
-- neither applied nor stored.
-- log_id is the log's id as pm_ingest_checkpoints.log_id holds it (32 lowercase hex digits); ''
-- in rows written before this file (their log is not recorded). The key becomes
-- (instance_id, log_id, lsn). A pm-ingestd older than this file names the old key in its insert,
-- which PostgreSQL then refuses (42P10): it retries, keeping the event in its log, until it is
-- upgraded (an older pm-ingestctl replay stops with that error); nothing is skipped.
-- Idempotent (a second run changes nothing); no BEGIN/COMMIT: the migrator runs each file in a
-- transaction.
ALTER TABLE pm_dead_letters ADD COLUMN IF NOT EXISTS log_id TEXT NOT NULL DEFAULT '';

ALTER TABLE pm_dead_letters DROP CONSTRAINT IF EXISTS pm_dead_letters_instance_lsn_key;

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_constraint
                 WHERE conrelid = 'pm_dead_letters'::regclass
                   AND conname = 'pm_dead_letters_instance_log_lsn_key') THEN
    ALTER TABLE pm_dead_letters
      ADD CONSTRAINT pm_dead_letters_instance_log_lsn_key UNIQUE (instance_id, log_id, lsn);
  END IF;
END
$$;

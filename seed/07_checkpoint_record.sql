-- 07_checkpoint_record.sql: the checkpoint names the last applied record as well as its position:
-- its size in the log (record_bytes, header included) and the CRC-32C of its payload (record_crc).
-- When the writer resumes, it reads that record back from the log and compares. A log that lost
-- records a checkpoint covers (storage that dropped synced data, files cut or restored by hand)
-- and then gave their LSNs to new events holds another record there: the writer refuses to apply
-- instead of skipping the new events as already applied. NULL in rows written before this file
-- (nothing to compare; the position checks still apply). Idempotent; no BEGIN/COMMIT: the
-- migrator runs each file in a transaction.
ALTER TABLE pm_ingest_checkpoints
  ADD COLUMN IF NOT EXISTS record_bytes BIGINT,
  ADD COLUMN IF NOT EXISTS record_crc BIGINT;

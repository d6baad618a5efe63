-- pm-ingestd's own bookkeeping: one row per daemon instance, the position of the last write-ahead
-- log record whose effects are committed. Written in the same transaction as each applied batch,
-- so replay after a crash starts exactly after what the tables already hold.
CREATE TABLE IF NOT EXISTS pm_ingest_checkpoints (
  instance_id     TEXT PRIMARY KEY,
  log_id          TEXT NOT NULL,      -- identity of the log the positions refer to
  lsn             BIGINT NOT NULL,    -- sequence number of the last applied record
  segment         BIGINT NOT NULL,    -- segment file holding the next record
  segment_offset  BIGINT NOT NULL,    -- byte offset of the next record in that segment
  log_offset      BIGINT NOT NULL,    -- the same position counted from the log's first byte
  applied_events  BIGINT NOT NULL DEFAULT 0,
  updated_at      TEXT NOT NULL
);

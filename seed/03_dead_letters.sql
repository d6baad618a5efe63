-- Events that PostgreSQL rejected on their own (a value out of range, say). The ingest writer
-- isolates such an event, stores it here with the server's error, and applies its batch-mates.
-- payload is the event as the producer sent it (BYTEA: it may hold bytes a TEXT column refuses).
CREATE TABLE IF NOT EXISTS pm_dead_letters (
  id           BIGSERIAL PRIMARY KEY,
  instance_id  TEXT NOT NULL,
  lsn          BIGINT NOT NULL,
  event_type   TEXT NOT NULL,
  payload      BYTEA NOT NULL,
  error        TEXT NOT NULL,
  sqlstate     TEXT,
  created_at   TEXT NOT NULL,
  CONSTRAINT pm_dead_letters_instance_lsn_key UNIQUE (instance_id, lsn)
);

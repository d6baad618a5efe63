-- pm-migrate: outside a transaction
-- 03a: the index of 04_trades_condition_timestamp_index.sql, built CONCURRENTLY, so that adding it
-- to a production polymarket_trades of millions of rows neither blocks that table's writers (the
-- original bot's, pm-ingestd's) for the length of the build nor fails under a statement timeout.
-- It sorts before 04, whose CREATE INDEX IF NOT EXISTS then finds it built (04 keeps its text: its
-- checksum is recorded in databases that applied it). On a database that applied 04 already this
-- file finds the index and does nothing. One statement (the migrator runs this file outside a
-- transaction, as CREATE INDEX CONCURRENTLY requires); a build cut short leaves the index
-- invalid, which the migrator drops and builds again at the next run.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_trades_condition_timestamp
  ON polymarket_trades (condition_id, "timestamp");

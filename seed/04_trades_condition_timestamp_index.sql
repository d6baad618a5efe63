-- Recent trades of a condition (G1 get_recent, get_by_condition, latest timestamp) read by
-- (condition_id, timestamp); the primary key alone cannot order by time.
CREATE INDEX IF NOT EXISTS idx_trades_condition_timestamp
  ON polymarket_trades (condition_id, "timestamp");

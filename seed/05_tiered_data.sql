-- Tiered-data tables of the original (storage-api.md 2.16, models 3.7): price_candles,
-- orderbook_snapshots, market_universe, price_snapshots, strategy_tier_requests. They are not part
-- of the production schema file (spec/schema.md); they are created here so that the repositories
-- of repos/candle_repository.h, repos/orderbook_repository.h and
-- repos/market_universe_repository.h have their tables. IF NOT EXISTS keeps this a no-op on a
-- database where the original already created them.
-- Time columns are TIMESTAMP without time zone as in the original; this library always stores
-- UTC in them (server defaults use now() AT TIME ZONE 'UTC'). Prices and volumes are REAL as in
-- the rest of the schema.

CREATE TABLE IF NOT EXISTS price_candles (
  condition_id TEXT NOT NULL,
  token_id TEXT NOT NULL,
  resolution TEXT NOT NULL,            -- '5m', '1h' or '1d'
  bucket_start TIMESTAMP NOT NULL,
  open_price REAL NOT NULL,
  high_price REAL NOT NULL,
  low_price REAL NOT NULL,
  close_price REAL NOT NULL,
  volume REAL NOT NULL DEFAULT 0,
  trade_count INTEGER NOT NULL DEFAULT 0,
  vwap REAL,
  PRIMARY KEY (condition_id, token_id, resolution, bucket_start)
);
CREATE INDEX IF NOT EXISTS idx_price_candles_resolution_bucket
  ON price_candles (resolution, bucket_start);

CREATE TABLE IF NOT EXISTS orderbook_snapshots (
  condition_id TEXT NOT NULL,
  token_id TEXT NOT NULL,
  snapshot_at TIMESTAMP NOT NULL,
  best_bid REAL,
  best_ask REAL,
  spread REAL,
  mid_price REAL,
  bids JSONB,                          -- list of levels; an empty list is stored as NULL
  asks JSONB,
  bid_depth_5pct REAL,
  ask_depth_5pct REAL,
  PRIMARY KEY (condition_id, token_id, snapshot_at)
);
CREATE INDEX IF NOT EXISTS idx_orderbook_snapshots_snapshot_at ON orderbook_snapshots (snapshot_at);

CREATE TABLE IF NOT EXISTS market_universe (
  condition_id TEXT PRIMARY KEY,
  market_id TEXT,
  question TEXT NOT NULL,
  description TEXT,
  category TEXT,
  end_date TIMESTAMP,
  created_at TIMESTAMP,
  outcomes JSONB NOT NULL DEFAULT '[]'::jsonb,
  outcome_count INTEGER NOT NULL DEFAULT 2,
  price REAL,
  best_bid REAL,
  best_ask REAL,
  spread REAL,
  volume_24h REAL NOT NULL DEFAULT 0,
  volume_total REAL NOT NULL DEFAULT 0,
  liquidity REAL NOT NULL DEFAULT 0,
  trade_count_24h INTEGER NOT NULL DEFAULT 0,
  price_change_1h REAL NOT NULL DEFAULT 0,
  price_change_24h REAL NOT NULL DEFAULT 0,
  interestingness_score REAL NOT NULL DEFAULT 0,
  tier INTEGER NOT NULL DEFAULT 1,
  tier_changed_at TIMESTAMP,
  pinned_tier INTEGER,
  is_resolved BOOLEAN NOT NULL DEFAULT FALSE,
  resolution_outcome TEXT,
  winning_outcome_index INTEGER,
  resolved_at TIMESTAMP,
  snapshot_at TIMESTAMP,
  created_in_db_at TIMESTAMP DEFAULT (now() AT TIME ZONE 'UTC'),
  last_strategy_signal_at TIMESTAMP,
  score_below_threshold_since TIMESTAMP
);
CREATE INDEX IF NOT EXISTS idx_market_universe_tier ON market_universe (tier) WHERE NOT is_resolved;
CREATE INDEX IF NOT EXISTS idx_market_universe_score
  ON market_universe (interestingness_score DESC, volume_24h DESC);

CREATE TABLE IF NOT EXISTS price_snapshots (
  condition_id TEXT NOT NULL,
  snapshot_at TIMESTAMP NOT NULL,
  price REAL,
  volume_24h REAL,
  PRIMARY KEY (condition_id, snapshot_at)
);

CREATE TABLE IF NOT EXISTS strategy_tier_requests (
  strategy_name TEXT NOT NULL,
  condition_id TEXT NOT NULL,
  requested_tier INTEGER NOT NULL,
  reason TEXT,
  requested_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
  expires_at TIMESTAMP NOT NULL,
  PRIMARY KEY (strategy_name, condition_id)
);
CREATE INDEX IF NOT EXISTS idx_strategy_tier_requests_expires ON strategy_tier_requests (expires_at);

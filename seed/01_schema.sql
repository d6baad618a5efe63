-- 01_schema.sql: the production schema of the trading bot's PostgreSQL database (its original
-- 01_schema.sql plus the G2 migration that re-keyed polymarket_first_triggers), unchanged: table and
-- column names, types, NULL/NOT NULL, defaults, keys and index names are shared with other
-- components of the bot. Idempotent: on a database that already has these tables every statement is
-- a no-op (IF NOT EXISTS), whatever the physical column order or extra columns there.
-- Units: polymarket_trades.timestamp and trade_watermarks.last_timestamp in the configured
-- timestamp unit (production: epoch ms); every trigger_timestamp and trigger_watermarks.last_timestamp
-- in epoch ms; *_at TEXT columns ISO-8601 UTC text; score_history.scored_at and trade_watchlist
-- BIGINT *_at columns epoch seconds. Money and prices are REAL (float4).
-- No BEGIN/COMMIT: the migrator runs each seed file in its own transaction.

CREATE TABLE IF NOT EXISTS approval_alerts (
    token_id     TEXT    NOT NULL,
    condition_id TEXT,
    question     TEXT,
    price        REAL,
    model_score  REAL,
    alerted_at   TEXT    NOT NULL,
    approved     BOOLEAN DEFAULT false,
    PRIMARY KEY (token_id)
);

CREATE TABLE IF NOT EXISTS candidate_watermarks (
    threshold       REAL NOT NULL,
    last_created_at TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (threshold)
);

CREATE TABLE IF NOT EXISTS daily_pnl (
    date           TEXT    NOT NULL,
    realized_pnl   REAL    DEFAULT 0,
    unrealized_pnl REAL    DEFAULT 0,
    total_pnl      REAL    DEFAULT 0,
    num_trades     INTEGER DEFAULT 0,
    num_wins       INTEGER DEFAULT 0,
    num_losses     INTEGER DEFAULT 0,
    updated_at     TEXT,
    PRIMARY KEY (date)
);

CREATE TABLE IF NOT EXISTS dashboard_actions (
    id          SERIAL NOT NULL,
    action_type TEXT   NOT NULL,
    status      TEXT   NOT NULL,
    details     TEXT,
    actor       TEXT,
    reason      TEXT,
    created_at  TEXT   NOT NULL,
    PRIMARY KEY (id)
);

CREATE TABLE IF NOT EXISTS exit_events (
    id            SERIAL NOT NULL,
    position_id   TEXT   NOT NULL,
    token_id      TEXT   NOT NULL,
    condition_id  TEXT,
    exit_type     TEXT   NOT NULL,
    entry_price   REAL   NOT NULL,
    exit_price    REAL   NOT NULL,
    size          REAL   NOT NULL,
    gross_pnl     REAL   NOT NULL,
    net_pnl       REAL   NOT NULL,
    hours_held    REAL   NOT NULL,
    exit_order_id TEXT,
    status        TEXT   NOT NULL DEFAULT 'pending',
    reason        TEXT,
    created_at    TEXT   NOT NULL,
    executed_at   TEXT,
    PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS idx_exit_events_position ON exit_events (position_id);
CREATE INDEX IF NOT EXISTS idx_exit_events_status ON exit_events (status);

CREATE TABLE IF NOT EXISTS live_orders (
    id           SERIAL  NOT NULL,
    order_id     TEXT,
    candidate_id INTEGER NOT NULL,
    token_id     TEXT    NOT NULL,
    condition_id TEXT,
    threshold    REAL    NOT NULL,
    order_price  REAL,
    order_size   REAL,
    fill_price   REAL,
    fill_size    REAL,
    status       TEXT    NOT NULL,
    reason       TEXT,
    submitted_at TEXT    NOT NULL,
    filled_at    TEXT,
    updated_at   TEXT,
    PRIMARY KEY (id),
    CONSTRAINT live_orders_order_id_key UNIQUE (order_id)
);
CREATE INDEX IF NOT EXISTS idx_live_orders_candidate ON live_orders (candidate_id);
CREATE INDEX IF NOT EXISTS idx_live_orders_status ON live_orders (status);
CREATE INDEX IF NOT EXISTS idx_live_orders_token ON live_orders (token_id);

CREATE TABLE IF NOT EXISTS market_blocks (
    condition_id TEXT NOT NULL,
    token_id     TEXT,
    reason       TEXT,
    actor        TEXT,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (condition_id)
);

CREATE TABLE IF NOT EXISTS market_scores_cache (
    condition_id      TEXT NOT NULL,
    market_id         TEXT,
    question          TEXT,
    category          TEXT,
    best_bid          REAL,
    best_ask          REAL,
    spread_pct        REAL,
    liquidity         REAL,
    volume            REAL,
    end_date          TEXT,
    time_to_end_hours REAL,
    model_score       REAL,
    passes_filters    INTEGER,
    filter_rejections TEXT,
    is_weather        INTEGER,
    is_crypto         INTEGER,
    is_politics       INTEGER,
    is_sports         INTEGER,
    updated_at        TEXT,
    PRIMARY KEY (condition_id)
);

CREATE TABLE IF NOT EXISTS paper_trades (
    id                SERIAL  NOT NULL,
    candidate_id      INTEGER NOT NULL,
    token_id          TEXT    NOT NULL,
    condition_id      TEXT,
    threshold         REAL    NOT NULL,
    trigger_timestamp BIGINT,
    candidate_price   REAL,
    fill_price        REAL,
    size              REAL,
    model_score       REAL,
    model_version     TEXT,
    decision          TEXT    NOT NULL,
    reason            TEXT,
    created_at        TEXT    NOT NULL,
    description       TEXT,
    outcome           TEXT,
    outcome_index     INTEGER,
    PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS idx_paper_trades_candidate ON paper_trades (candidate_id);

CREATE TABLE IF NOT EXISTS polymarket_candidates (
    id                SERIAL  NOT NULL,
    token_id          TEXT    NOT NULL,
    condition_id      TEXT,
    threshold         REAL    NOT NULL,
    trigger_timestamp BIGINT  NOT NULL,
    price             REAL,
    status            TEXT    NOT NULL,
    score             REAL,
    created_at        TEXT    NOT NULL,
    model_score       REAL,
    model_version     TEXT,
    outcome           TEXT,
    outcome_index     INTEGER,
    updated_at        TEXT,
    PRIMARY KEY (id)
);

CREATE TABLE IF NOT EXISTS polymarket_first_triggers (
    token_id          TEXT    NOT NULL,
    condition_id      TEXT    NOT NULL DEFAULT '',
    threshold         REAL    NOT NULL,
    trigger_timestamp BIGINT  NOT NULL,
    price             REAL,
    size              REAL,
    created_at        TEXT    NOT NULL,
    model_score       REAL,
    model_version     TEXT,
    outcome           TEXT,
    outcome_index     INTEGER,
    PRIMARY KEY (token_id, condition_id, threshold)
);
CREATE INDEX IF NOT EXISTS idx_triggers_condition ON polymarket_first_triggers (condition_id);
CREATE UNIQUE INDEX IF NOT EXISTS idx_triggers_condition_threshold_unique
    ON polymarket_first_triggers (condition_id, threshold);
CREATE INDEX IF NOT EXISTS idx_triggers_threshold ON polymarket_first_triggers (threshold);
CREATE INDEX IF NOT EXISTS idx_triggers_token_threshold ON polymarket_first_triggers (token_id, threshold);

CREATE TABLE IF NOT EXISTS polymarket_resolutions (
    condition_id          TEXT    NOT NULL,
    winning_outcome_index INTEGER,
    winning_outcome       TEXT,
    resolved_at           TEXT,
    PRIMARY KEY (condition_id)
);

CREATE TABLE IF NOT EXISTS polymarket_token_meta (
    token_id      TEXT    NOT NULL,
    condition_id  TEXT,
    market_id     TEXT,
    outcome_index INTEGER,
    outcome       TEXT,
    question      TEXT,
    fetched_at    TEXT,
    PRIMARY KEY (token_id)
);

CREATE TABLE IF NOT EXISTS polymarket_trades (
    condition_id  TEXT    NOT NULL,
    trade_id      TEXT    NOT NULL,
    token_id      TEXT,
    price         REAL,
    size          REAL,
    side          TEXT,
    timestamp     BIGINT,
    raw_json      TEXT,
    outcome       TEXT,
    outcome_index INTEGER,
    PRIMARY KEY (condition_id, trade_id)
);

CREATE TABLE IF NOT EXISTS positions (
    id              SERIAL  NOT NULL,
    token_id        TEXT    NOT NULL,
    condition_id    TEXT,
    market_id       TEXT,
    outcome         TEXT,
    outcome_index   INTEGER,
    side            TEXT    NOT NULL DEFAULT 'BUY',
    size            REAL    NOT NULL,
    entry_price     REAL    NOT NULL,
    entry_cost      REAL    NOT NULL,
    current_price   REAL,
    current_value   REAL,
    unrealized_pnl  REAL,
    realized_pnl    REAL    DEFAULT 0,
    status          TEXT    NOT NULL DEFAULT 'open',
    resolution      TEXT,
    entry_order_id  TEXT,
    exit_order_id   TEXT,
    exit_pending    BOOLEAN DEFAULT false,
    exit_status     TEXT,
    entry_timestamp TEXT    NOT NULL,
    exit_timestamp  TEXT,
    resolved_at     TEXT,
    description     TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT,
    PRIMARY KEY (id),
    CONSTRAINT positions_token_id_entry_timestamp_key UNIQUE (token_id, entry_timestamp)
);
CREATE INDEX IF NOT EXISTS idx_positions_status ON positions (status);
CREATE INDEX IF NOT EXISTS idx_positions_token ON positions (token_id);

CREATE TABLE IF NOT EXISTS score_history (
    id                SERIAL NOT NULL,
    token_id          TEXT,
    score             REAL,
    time_to_end_hours REAL,
    scored_at         BIGINT,
    PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS idx_score_history_token ON score_history (token_id);

CREATE TABLE IF NOT EXISTS stream_watchlist (
    market_id    TEXT NOT NULL,
    question     TEXT NOT NULL,
    slug         TEXT NOT NULL,
    category     TEXT,
    best_bid     REAL,
    best_ask     REAL,
    liquidity    REAL,
    volume       REAL,
    end_date     TEXT,
    generated_at TEXT NOT NULL,
    condition_id TEXT,
    PRIMARY KEY (market_id)
);

CREATE TABLE IF NOT EXISTS trade_approvals (
    token_id     TEXT NOT NULL,
    condition_id TEXT,
    approved_at  TEXT NOT NULL,
    approved_by  TEXT DEFAULT 'telegram',
    max_price    REAL DEFAULT 0.98,
    expires_at   TEXT,
    status       TEXT DEFAULT 'pending',
    executed_at  TEXT,
    PRIMARY KEY (token_id)
);

CREATE TABLE IF NOT EXISTS trade_watchlist (
    token_id          TEXT   NOT NULL,
    market_id         TEXT,
    condition_id      TEXT,
    question          TEXT,
    trigger_price     REAL,
    trigger_size      REAL,
    trigger_timestamp BIGINT,
    initial_score     REAL,
    current_score     REAL,
    time_to_end_hours REAL,
    last_scored_at    BIGINT,
    status            TEXT   DEFAULT 'watching',
    created_at        BIGINT,
    updated_at        BIGINT,
    PRIMARY KEY (token_id)
);
CREATE INDEX IF NOT EXISTS idx_watchlist_status ON trade_watchlist (status);

CREATE TABLE IF NOT EXISTS trade_watermarks (
    condition_id   TEXT   NOT NULL,
    last_timestamp BIGINT NOT NULL,
    updated_at     TEXT   NOT NULL,
    PRIMARY KEY (condition_id)
);

CREATE TABLE IF NOT EXISTS trigger_watermarks (
    threshold      REAL   NOT NULL,
    last_timestamp BIGINT NOT NULL,
    updated_at     TEXT   NOT NULL,
    PRIMARY KEY (threshold)
);

#pragma once
// Models: one plain value type per production table, mirroring the production schema in
// seed/01_schema.sql (column for column, in the same order, members named like the columns).
// - Plain aggregates: copyable and movable, no DB handles, no invariants; whoever holds one owns
//   it. Repositories build them with from_row<Model>() and write them back with their own SQL.
// - Types: TEXT -> std::string, INTEGER -> std::int32_t, BIGINT -> std::int64_t, BOOLEAN -> bool,
//   REAL -> double. REAL columns hold float4, so a value reads back rounded to about 7 significant
//   digits (0.123456789 -> 0.12345679) and SQL arithmetic on them is float4 (0.85 widened to
//   float8 is 0.8500000238...): compare money and prices with a tolerance.
// - Nullable columns are std::optional. A column with a database default starts at that default
//   (nullable or not); SERIAL ids start at 0, meaning "not yet assigned". Other numeric members
//   are value-initialised only so that nothing is ever indeterminate.
// - Time: *_at TEXT columns hold ISO-8601 UTC text; trigger_timestamp and
//   trigger_watermarks.last_timestamp epoch ms; polymarket_trades.timestamp and
//   trade_watermarks.last_timestamp the configured TimestampUnit (production: epoch ms);
//   score_history.scored_at and the BIGINT trade_watchlist *_at columns epoch seconds.
// - from_row<Model>(row) reads every column of Model by name: extra columns in the row are
//   ignored and their order does not matter; a missing column throws pqxx::argument_error, a NULL
//   in a non-optional member throws pqxx::conversion_error.
#include <cstdint>
#include <optional>
#include <string>

#include <pqxx/row>

namespace pm {

// Specialised (in models.cpp) for every model below; other types do not link.
template <typename Model>
Model from_row(const pqxx::row& row);

struct ApprovalAlert {  // approval_alerts
  std::string token_id;
  std::optional<std::string> condition_id;
  std::optional<std::string> question;
  std::optional<double> price;
  std::optional<double> model_score;
  std::string alerted_at;
  std::optional<bool> approved = false;
};

struct CandidateWatermark {  // candidate_watermarks
  double threshold{};
  std::string last_created_at;
  std::string updated_at;
};

struct DailyPnl {  // daily_pnl
  std::string date;
  std::optional<double> realized_pnl = 0.0;
  std::optional<double> unrealized_pnl = 0.0;
  std::optional<double> total_pnl = 0.0;
  std::optional<std::int32_t> num_trades = 0;
  std::optional<std::int32_t> num_wins = 0;
  std::optional<std::int32_t> num_losses = 0;
  std::optional<std::string> updated_at;
};

struct DashboardAction {  // dashboard_actions
  std::int32_t id = 0;
  std::string action_type;
  std::string status;
  std::optional<std::string> details;
  std::optional<std::string> actor;
  std::optional<std::string> reason;
  std::string created_at;
};

struct ExitEvent {  // exit_events
  std::int32_t id = 0;
  std::string position_id;
  std::string token_id;
  std::optional<std::string> condition_id;
  std::string exit_type;
  double entry_price{};
  double exit_price{};
  double size{};
  double gross_pnl{};
  double net_pnl{};
  double hours_held{};
  std::optional<std::string> exit_order_id;
  std::string status = "pending";
  std::optional<std::string> reason;
  std::string created_at;
  std::optional<std::string> executed_at;
};

struct LiveOrder {  // live_orders
  std::int32_t id = 0;
  std::optional<std::string> order_id;
  std::int32_t candidate_id{};
  std::string token_id;
  std::optional<std::string> condition_id;
  double threshold{};
  std::optional<double> order_price;
  std::optional<double> order_size;
  std::optional<double> fill_price;
  std::optional<double> fill_size;
  std::string status;
  std::optional<std::string> reason;
  std::string submitted_at;
  std::optional<std::string> filled_at;
  std::optional<std::string> updated_at;
};

struct MarketBlock {  // market_blocks
  std::string condition_id;
  std::optional<std::string> token_id;
  std::optional<std::string> reason;
  std::optional<std::string> actor;
  std::string created_at;
};

struct MarketScoresCache {  // market_scores_cache (one row per market)
  std::string condition_id;
  std::optional<std::string> market_id;
  std::optional<std::string> question;
  std::optional<std::string> category;
  std::optional<double> best_bid;
  std::optional<double> best_ask;
  std::optional<double> spread_pct;
  std::optional<double> liquidity;
  std::optional<double> volume;
  std::optional<std::string> end_date;
  std::optional<double> time_to_end_hours;
  std::optional<double> model_score;
  std::optional<std::int32_t> passes_filters;
  std::optional<std::string> filter_rejections;
  std::optional<std::int32_t> is_weather;
  std::optional<std::int32_t> is_crypto;
  std::optional<std::int32_t> is_politics;
  std::optional<std::int32_t> is_sports;
  std::optional<std::string> updated_at;
};

struct PaperTrade {  // paper_trades
  std::int32_t id = 0;
  std::int32_t candidate_id{};
  std::string token_id;
  std::optional<std::string> condition_id;
  double threshold{};
  std::optional<std::int64_t> trigger_timestamp;  // epoch ms
  std::optional<double> candidate_price;
  std::optional<double> fill_price;
  std::optional<double> size;
  std::optional<double> model_score;
  std::optional<std::string> model_version;
  std::string decision;
  std::optional<std::string> reason;
  std::string created_at;
  std::optional<std::string> description;
  std::optional<std::string> outcome;
  std::optional<std::int32_t> outcome_index;
};

struct PolymarketCandidate {  // polymarket_candidates
  std::int32_t id = 0;
  std::string token_id;
  std::optional<std::string> condition_id;
  double threshold{};
  std::int64_t trigger_timestamp{};  // epoch ms
  std::optional<double> price;
  std::string status;
  std::optional<double> score;
  std::string created_at;
  std::optional<double> model_score;
  std::optional<std::string> model_version;
  std::optional<std::string> outcome;
  std::optional<std::int32_t> outcome_index;
  std::optional<std::string> updated_at;
};

struct PolymarketFirstTrigger {  // polymarket_first_triggers
  std::string token_id;
  std::string condition_id;  // NOT NULL DEFAULT '' (part of the primary key)
  double threshold{};
  std::int64_t trigger_timestamp{};  // epoch ms
  std::optional<double> price;
  std::optional<double> size;
  std::string created_at;
  std::optional<double> model_score;
  std::optional<std::string> model_version;
  std::optional<std::string> outcome;
  std::optional<std::int32_t> outcome_index;
};

struct PolymarketResolution {  // polymarket_resolutions
  std::string condition_id;
  std::optional<std::int32_t> winning_outcome_index;
  std::optional<std::string> winning_outcome;
  std::optional<std::string> resolved_at;
};

struct PolymarketTokenMeta {  // polymarket_token_meta
  std::string token_id;
  std::optional<std::string> condition_id;
  std::optional<std::string> market_id;
  std::optional<std::int32_t> outcome_index;
  std::optional<std::string> outcome;
  std::optional<std::string> question;
  std::optional<std::string> fetched_at;
};

struct PolymarketTrade {  // polymarket_trades
  std::string condition_id;
  std::string trade_id;
  std::optional<std::string> token_id;
  std::optional<double> price;
  std::optional<double> size;
  std::optional<std::string> side;
  std::optional<std::int64_t> timestamp;  // in the configured TimestampUnit (production: epoch ms)
  std::optional<std::string> raw_json;
  std::optional<std::string> outcome;
  std::optional<std::int32_t> outcome_index;
};

struct Position {  // positions
  std::int32_t id = 0;
  std::string token_id;
  std::optional<std::string> condition_id;
  std::optional<std::string> market_id;
  std::optional<std::string> outcome;
  std::optional<std::int32_t> outcome_index;
  std::string side = "BUY";
  double size{};
  double entry_price{};
  double entry_cost{};
  std::optional<double> current_price;
  std::optional<double> current_value;
  std::optional<double> unrealized_pnl;
  std::optional<double> realized_pnl = 0.0;
  std::string status = "open";
  std::optional<std::string> resolution;
  std::optional<std::string> entry_order_id;
  std::optional<std::string> exit_order_id;
  std::optional<bool> exit_pending = false;
  std::optional<std::string> exit_status;
  std::string entry_timestamp;  // TEXT, ISO-8601 UTC
  std::optional<std::string> exit_timestamp;
  std::optional<std::string> resolved_at;
  std::optional<std::string> description;
  std::string created_at;
  std::optional<std::string> updated_at;
};

struct ScoreHistory {  // score_history
  std::int32_t id = 0;
  std::optional<std::string> token_id;
  std::optional<double> score;
  std::optional<double> time_to_end_hours;
  std::optional<std::int64_t> scored_at;  // epoch seconds
};

struct StreamWatchlist {  // stream_watchlist
  std::string market_id;
  std::string question;
  std::string slug;
  std::optional<std::string> category;
  std::optional<double> best_bid;
  std::optional<double> best_ask;
  std::optional<double> liquidity;
  std::optional<double> volume;
  std::optional<std::string> end_date;
  std::string generated_at;
  std::optional<std::string> condition_id;
};

struct TradeApproval {  // trade_approvals
  std::string token_id;
  std::optional<std::string> condition_id;
  std::string approved_at;
  std::optional<std::string> approved_by = "telegram";
  std::optional<double> max_price = 0.98;
  std::optional<std::string> expires_at;
  std::optional<std::string> status = "pending";
  std::optional<std::string> executed_at;
};

struct TradeWatchlist {  // trade_watchlist
  std::string token_id;
  std::optional<std::string> market_id;
  std::optional<std::string> condition_id;
  std::optional<std::string> question;
  std::optional<double> trigger_price;
  std::optional<double> trigger_size;
  std::optional<std::int64_t> trigger_timestamp;  // epoch ms
  std::optional<double> initial_score;
  std::optional<double> current_score;
  std::optional<double> time_to_end_hours;
  std::optional<std::int64_t> last_scored_at;  // epoch seconds
  std::optional<std::string> status = "watching";
  std::optional<std::int64_t> created_at;  // epoch seconds
  std::optional<std::int64_t> updated_at;  // epoch seconds
};

struct TradeWatermark {  // trade_watermarks
  std::string condition_id;
  std::int64_t last_timestamp{};  // in the configured TimestampUnit (production: epoch ms)
  std::string updated_at;
};

struct TriggerWatermark {  // trigger_watermarks
  double threshold{};
  std::int64_t last_timestamp{};  // epoch ms
  std::string updated_at;
};

template <> ApprovalAlert from_row<ApprovalAlert>(const pqxx::row& row);
template <> CandidateWatermark from_row<CandidateWatermark>(const pqxx::row& row);
template <> DailyPnl from_row<DailyPnl>(const pqxx::row& row);
template <> DashboardAction from_row<DashboardAction>(const pqxx::row& row);
template <> ExitEvent from_row<ExitEvent>(const pqxx::row& row);
template <> LiveOrder from_row<LiveOrder>(const pqxx::row& row);
template <> MarketBlock from_row<MarketBlock>(const pqxx::row& row);
template <> MarketScoresCache from_row<MarketScoresCache>(const pqxx::row& row);
template <> PaperTrade from_row<PaperTrade>(const pqxx::row& row);
template <> PolymarketCandidate from_row<PolymarketCandidate>(const pqxx::row& row);
template <> PolymarketFirstTrigger from_row<PolymarketFirstTrigger>(const pqxx::row& row);
template <> PolymarketResolution from_row<PolymarketResolution>(const pqxx::row& row);
template <> PolymarketTokenMeta from_row<PolymarketTokenMeta>(const pqxx::row& row);
template <> PolymarketTrade from_row<PolymarketTrade>(const pqxx::row& row);
template <> Position from_row<Position>(const pqxx::row& row);
template <> ScoreHistory from_row<ScoreHistory>(const pqxx::row& row);
template <> StreamWatchlist from_row<StreamWatchlist>(const pqxx::row& row);
template <> TradeApproval from_row<TradeApproval>(const pqxx::row& row);
template <> TradeWatchlist from_row<TradeWatchlist>(const pqxx::row& row);
template <> TradeWatermark from_row<TradeWatermark>(const pqxx::row& row);
template <> TriggerWatermark from_row<TriggerWatermark>(const pqxx::row& row);

}  // namespace pm

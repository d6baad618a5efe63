// from_row<Model>: builds each model from a pqxx::row, reading every column by its name.
#include "repos/models.h"

#include <pqxx/field>

namespace pm {
namespace {

// NOT NULL column: a NULL value throws pqxx::conversion_error.
template <typename T>
void read_column(const pqxx::row& row, const char* column, T& out) {
  out = row[column].as<T>();
}

// Nullable column: NULL -> nullopt. (field::as<std::optional<T>>() does not compile with the
// installed libpqxx 6.4 headers, which leave PQXX_HAVE_OPTIONAL undefined.)
template <typename T>
void read_column(const pqxx::row& row, const char* column, std::optional<T>& out) {
  const pqxx::field field = row[column];
  if (field.is_null()) {
    out.reset();
  } else {
    out = field.as<T>();
  }
}

}  // namespace

// The column name is the member name, so the two cannot drift apart.
#define PM_COLUMN(member) read_column(row, #member, model.member)

template <>
ApprovalAlert from_row<ApprovalAlert>(const pqxx::row& row) {
  ApprovalAlert model;
  PM_COLUMN(token_id);
  PM_COLUMN(condition_id);
  PM_COLUMN(question);
  PM_COLUMN(price);
  PM_COLUMN(model_score);
  PM_COLUMN(alerted_at);
  PM_COLUMN(approved);
  return model;
}

template <>
CandidateWatermark from_row<CandidateWatermark>(const pqxx::row& row) {
  CandidateWatermark model;
  PM_COLUMN(threshold);
  PM_COLUMN(last_created_at);
  PM_COLUMN(updated_at);
  return model;
}

template <>
DailyPnl from_row<DailyPnl>(const pqxx::row& row) {
  DailyPnl model;
  PM_COLUMN(date);
  PM_COLUMN(realized_pnl);
  PM_COLUMN(unrealized_pnl);
  PM_COLUMN(total_pnl);
  PM_COLUMN(num_trades);
  PM_COLUMN(num_wins);
  PM_COLUMN(num_losses);
  PM_COLUMN(updated_at);
  return model;
}

template <>
DashboardAction from_row<DashboardAction>(const pqxx::row& row) {
  DashboardAction model;
  PM_COLUMN(id);
  PM_COLUMN(action_type);
  PM_COLUMN(status);
  PM_COLUMN(details);
  PM_COLUMN(actor);
  PM_COLUMN(reason);
  PM_COLUMN(created_at);
  return model;
}

template <>
ExitEvent from_row<ExitEvent>(const pqxx::row& row) {
  ExitEvent model;
  PM_COLUMN(id);
  PM_COLUMN(position_id);
  PM_COLUMN(token_id);
  PM_COLUMN(condition_id);
  PM_COLUMN(exit_type);
  PM_COLUMN(entry_price);
  PM_COLUMN(exit_price);
  PM_COLUMN(size);
  PM_COLUMN(gross_pnl);
  PM_COLUMN(net_pnl);
  PM_COLUMN(hours_held);
  PM_COLUMN(exit_order_id);
  PM_COLUMN(status);
  PM_COLUMN(reason);
  PM_COLUMN(created_at);
  PM_COLUMN(executed_at);
  return model;
}

template <>
LiveOrder from_row<LiveOrder>(const pqxx::row& row) {
  LiveOrder model;
  PM_COLUMN(id);
  PM_COLUMN(order_id);
  PM_COLUMN(candidate_id);
  PM_COLUMN(token_id);
  PM_COLUMN(condition_id);
  PM_COLUMN(threshold);
  PM_COLUMN(order_price);
  PM_COLUMN(order_size);
  PM_COLUMN(fill_price);
  PM_COLUMN(fill_size);
  PM_COLUMN(status);
  PM_COLUMN(reason);
  PM_COLUMN(submitted_at);
  PM_COLUMN(filled_at);
  PM_COLUMN(updated_at);
  return model;
}

template <>
MarketBlock from_row<MarketBlock>(const pqxx::row& row) {
  MarketBlock model;
  PM_COLUMN(condition_id);
  PM_COLUMN(token_id);
  PM_COLUMN(reason);
  PM_COLUMN(actor);
  PM_COLUMN(created_at);
  return model;
}

template <>
MarketScoresCache from_row<MarketScoresCache>(const pqxx::row& row) {
  MarketScoresCache model;
  PM_COLUMN(condition_id);
  PM_COLUMN(market_id);
  PM_COLUMN(question);
  PM_COLUMN(category);
  PM_COLUMN(best_bid);
  PM_COLUMN(best_ask);
  PM_COLUMN(spread_pct);
  PM_COLUMN(liquidity);
  PM_COLUMN(volume);
  PM_COLUMN(end_date);
  PM_COLUMN(time_to_end_hours);
  PM_COLUMN(model_score);
  PM_COLUMN(passes_filters);
  PM_COLUMN(filter_rejections);
  PM_COLUMN(is_weather);
  PM_COLUMN(is_crypto);
  PM_COLUMN(is_politics);
  PM_COLUMN(is_sports);
  PM_COLUMN(updated_at);
  return model;
}

template <>
PaperTrade from_row<PaperTrade>(const pqxx::row& row) {
  PaperTrade model;
  PM_COLUMN(id);
  PM_COLUMN(candidate_id);
  PM_COLUMN(token_id);
  PM_COLUMN(condition_id);
  PM_COLUMN(threshold);
  PM_COLUMN(trigger_timestamp);
  PM_COLUMN(candidate_price);
  PM_COLUMN(fill_price);
  PM_COLUMN(size);
  PM_COLUMN(model_score);
  PM_COLUMN(model_version);
  PM_COLUMN(decision);
  PM_COLUMN(reason);
  PM_COLUMN(created_at);
  PM_COLUMN(description);
  PM_COLUMN(outcome);
  PM_COLUMN(outcome_index);
  return model;
}

template <>
PolymarketCandidate from_row<PolymarketCandidate>(const pqxx::row& row) {
  PolymarketCandidate model;
  PM_COLUMN(id);
  PM_COLUMN(token_id);
  PM_COLUMN(condition_id);
  PM_COLUMN(threshold);
  PM_COLUMN(trigger_timestamp);
  PM_COLUMN(price);
  PM_COLUMN(status);
  PM_COLUMN(score);
  PM_COLUMN(created_at);
  PM_COLUMN(model_score);
  PM_COLUMN(model_version);
  PM_COLUMN(outcome);
  PM_COLUMN(outcome_index);
  PM_COLUMN(updated_at);
  return model;
}

template <>
PolymarketFirstTrigger from_row<PolymarketFirstTrigger>(const pqxx::row& row) {
  PolymarketFirstTrigger model;
  PM_COLUMN(token_id);
  PM_COLUMN(condition_id);
  PM_COLUMN(threshold);
  PM_COLUMN(trigger_timestamp);
  PM_COLUMN(price);
  PM_COLUMN(size);
  PM_COLUMN(created_at);
  PM_COLUMN(model_score);
  PM_COLUMN(model_version);
  PM_COLUMN(outcome);
  PM_COLUMN(outcome_index);
  return model;
}

template <>
PolymarketResolution from_row<PolymarketResolution>(const pqxx::row& row) {
  PolymarketResolution model;
  PM_COLUMN(condition_id);
  PM_COLUMN(winning_outcome_index);
  PM_COLUMN(winning_outcome);
  PM_COLUMN(resolved_at);
  return model;
}

template <>
PolymarketTokenMeta from_row<PolymarketTokenMeta>(const pqxx::row& row) {
  PolymarketTokenMeta model;
  PM_COLUMN(token_id);
  PM_COLUMN(condition_id);
  PM_COLUMN(market_id);
  PM_COLUMN(outcome_index);
  PM_COLUMN(outcome);
  PM_COLUMN(question);
  PM_COLUMN(fetched_at);
  return model;
}

template <>
PolymarketTrade from_row<PolymarketTrade>(const pqxx::row& row) {
  PolymarketTrade model;
  PM_COLUMN(condition_id);
  PM_COLUMN(trade_id);
  PM_COLUMN(token_id);
  PM_COLUMN(price);
  PM_COLUMN(size);
  PM_COLUMN(side);
  PM_COLUMN(timestamp);
  PM_COLUMN(raw_json);
  PM_COLUMN(outcome);
  PM_COLUMN(outcome_index);
  return model;
}

template <>
Position from_row<Position>(const pqxx::row& row) {
  Position model;
  PM_COLUMN(id);
  PM_COLUMN(token_id);
  PM_COLUMN(condition_id);
  PM_COLUMN(market_id);
  PM_COLUMN(outcome);
  PM_COLUMN(outcome_index);
  PM_COLUMN(side);
  PM_COLUMN(size);
  PM_COLUMN(entry_price);
  PM_COLUMN(entry_cost);
  PM_COLUMN(current_price);
  PM_COLUMN(current_value);
  PM_COLUMN(unrealized_pnl);
  PM_COLUMN(realized_pnl);
  PM_COLUMN(status);
  PM_COLUMN(resolution);
  PM_COLUMN(entry_order_id);
  PM_COLUMN(exit_order_id);
  PM_COLUMN(exit_pending);
  PM_COLUMN(exit_status);
  PM_COLUMN(entry_timestamp);
  PM_COLUMN(exit_timestamp);
  PM_COLUMN(resolved_at);
  PM_COLUMN(description);
  PM_COLUMN(created_at);
  PM_COLUMN(updated_at);
  return model;
}

template <>
ScoreHistory from_row<ScoreHistory>(const pqxx::row& row) {
  ScoreHistory model;
  PM_COLUMN(id);
  PM_COLUMN(token_id);
  PM_COLUMN(score);
  PM_COLUMN(time_to_end_hours);
  PM_COLUMN(scored_at);
  return model;
}

template <>
StreamWatchlist from_row<StreamWatchlist>(const pqxx::row& row) {
  StreamWatchlist model;
  PM_COLUMN(market_id);
  PM_COLUMN(question);
  PM_COLUMN(slug);
  PM_COLUMN(category);
  PM_COLUMN(best_bid);
  PM_COLUMN(best_ask);
  PM_COLUMN(liquidity);
  PM_COLUMN(volume);
  PM_COLUMN(end_date);
  PM_COLUMN(generated_at);
  PM_COLUMN(condition_id);
  return model;
}

template <>
TradeApproval from_row<TradeApproval>(const pqxx::row& row) {
  TradeApproval model;
  PM_COLUMN(token_id);
  PM_COLUMN(condition_id);
  PM_COLUMN(approved_at);
  PM_COLUMN(approved_by);
  PM_COLUMN(max_price);
  PM_COLUMN(expires_at);
  PM_COLUMN(status);
  PM_COLUMN(executed_at);
  return model;
}

template <>
TradeWatchlist from_row<TradeWatchlist>(const pqxx::row& row) {
  TradeWatchlist model;
  PM_COLUMN(token_id);
  PM_COLUMN(market_id);
  PM_COLUMN(condition_id);
  PM_COLUMN(question);
  PM_COLUMN(trigger_price);
  PM_COLUMN(trigger_size);
  PM_COLUMN(trigger_timestamp);
  PM_COLUMN(initial_score);
  PM_COLUMN(current_score);
  PM_COLUMN(time_to_end_hours);
  PM_COLUMN(last_scored_at);
  PM_COLUMN(status);
  PM_COLUMN(created_at);
  PM_COLUMN(updated_at);
  return model;
}

template <>
TradeWatermark from_row<TradeWatermark>(const pqxx::row& row) {
  TradeWatermark model;
  PM_COLUMN(condition_id);
  PM_COLUMN(last_timestamp);
  PM_COLUMN(updated_at);
  return model;
}

template <>
TriggerWatermark from_row<TriggerWatermark>(const pqxx::row& row) {
  TriggerWatermark model;
  PM_COLUMN(threshold);
  PM_COLUMN(last_timestamp);
  PM_COLUMN(updated_at);
  return model;
}

#undef PM_COLUMN

}  // namespace pm

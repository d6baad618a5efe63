#pragma once
// MarketUniverseRepository: `market_universe` (key condition_id), `price_snapshots` (PK
// (condition_id, snapshot_at)) and `strategy_tier_requests` (PK (strategy_name, condition_id)),
// storage-api.md 2.16. Every time is canonical ISO UTC text (repos/tiered_support.h); the
// columns are TIMESTAMP holding UTC and "now" is the server's clock in UTC.
// - upsert(m) returns the stored row. Merge rules on conflict (as the original):
//   market_id, question, description, category, end_date, outcome_count take COALESCE(new, old);
//   outcomes (JSONB list of {token_id, outcome, outcome_index}) are replaced unless the new list
//   is empty; price, best_bid, best_ask, spread, volume_24h, volume_total, liquidity,
//   trade_count_24h, price_change_1h/24h are overwritten (NULLs included); interestingness_score,
//   tier, tier_changed_at, pinned_tier, created_in_db_at, last_strategy_signal_at and
//   score_below_threshold_since are never changed by an upsert; created_at keeps a stored value
//   (a NULL one is filled); is_resolved is sticky (old OR new); resolution_outcome,
//   winning_outcome_index and resolved_at take COALESCE(new, old); snapshot_at becomes now. A new
//   row takes tier, pinned_tier and interestingness_score from the model.
// - upsert_batch(ms): every row in ONE transaction (all or nothing) and returns the real counts
//   of rows inserted and updated (fix for D31: the original ran one autocommit statement per row
//   and returned the attempted count). A condition repeated in a batch counts as an update.
// - query(q): MarketQuery filters (unset filters are ignored; rows whose filtered column is NULL
//   do not match), ordered by interestingness_score DESC, volume_24h DESC, then condition_id as a
//   tie-breaker (the original had none). days_to_end/market_age_days bounds are in days relative
//   to now (fractions allowed). exclude_categories drops rows whose category is NULL as the
//   original's `!= ALL` did.
// - get_by_condition_id; get_by_tier(tier, limit = 1000) unresolved rows of that tier in query()
//   order; get_tier_counts() {tier: n} over unresolved rows; get_top_by_score(limit = 100) all
//   rows (resolved included, as in the original) in query() order.
// - promote(cid, target, reason) is true only if the current tier is below target (then tier =
//   target, tier_changed_at = now); demote(cid, target) is true only if the current tier is above
//   target and pinned_tier is NULL or <= target. reason is not stored (no column; the original
//   only logged it). set_pinned_tier(cid, tier or nullopt) is true when the row exists.
// - update_interestingness_scores({cid: score}) in one statement; returns the rows updated
//   (missing cids are not counted). score_below_threshold_since becomes now when the score is
//   below 20 and it was NULL, stays when already set, and is cleared when the score is >= 20.
// - record_strategy_signal(cid): last_strategy_signal_at = now; true when the row exists.
// - save_price_snapshot (DO NOTHING; true when inserted); get_price_at_time(cid, t): price of
//   the latest snapshot at or before t that has a price, nullopt when none;
//   compute_price_changes(cids): {cid: {Δ1h, Δ24h}} where Δ = current price - price at
//   (now - 1h / now - 24h), 0 when there is no such snapshot; cids without a market row or with a
//   NULL current price are left out.
// - create_tier_request(r) upserts on (strategy_name, condition_id): requested_tier becomes
//   GREATEST(old, new), reason/requested_at/expires_at are replaced; an empty requested_at means
//   now. get_active_tier_requests(min_tier = 2): unexpired (expires_at > now) requests with
//   requested_tier >= min_tier, highest tier first, then newest, then by key.
//   cleanup_expired_requests() deletes expired requests and returns how many.
// - get_resolved_markets(since, limit = 1000): resolved rows with resolved_at >= since (all when
//   since is unset), newest resolved_at first, NULL resolved_at last, condition_id tie-breaker.
//   get_resolution(cid): nullopt for a missing row, otherwise its resolution fields.
//   check_position_won(outcome_index, winning_index): pure, equality. get_pnl_for_position(cid,
//   outcome_index, entry_price, size): nullopt when the market is missing, unresolved or has no
//   winning index; otherwise exit_price 1.0 (won) or 0.0, pnl = (exit - entry) * size, pnl_pct =
//   (exit - entry) / entry * 100 (0 when entry_price is 0).
// Throws std::invalid_argument for unparseable times or negative limits before any SQL runs.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <pqxx/row>

#include "repos/db_target.h"
#include "repos/models.h"
#include "repos/util/clock.h"

namespace pm {

struct OutcomeToken {
  std::string token_id;
  std::string outcome;
  std::int32_t outcome_index = 0;
  bool operator==(const OutcomeToken&) const = default;
};

struct MarketUniverse {  // market_universe
  std::string condition_id;
  std::optional<std::string> market_id;
  std::string question;
  std::optional<std::string> description;
  std::optional<std::string> category;
  std::optional<std::string> end_date;    // ISO UTC
  std::optional<std::string> created_at;  // the market's creation, ISO UTC
  std::vector<OutcomeToken> outcomes;
  std::int32_t outcome_count = 2;
  std::optional<double> price;
  std::optional<double> best_bid;
  std::optional<double> best_ask;
  std::optional<double> spread;
  double volume_24h = 0;
  double volume_total = 0;
  double liquidity = 0;
  std::int32_t trade_count_24h = 0;
  double price_change_1h = 0;
  double price_change_24h = 0;
  double interestingness_score = 0;
  std::int32_t tier = 1;
  std::optional<std::string> tier_changed_at;
  std::optional<std::int32_t> pinned_tier;
  bool is_resolved = false;
  std::optional<std::string> resolution_outcome;
  std::optional<std::int32_t> winning_outcome_index;
  std::optional<std::string> resolved_at;
  std::optional<std::string> snapshot_at;
  std::optional<std::string> created_in_db_at;
  std::optional<std::string> last_strategy_signal_at;
  std::optional<std::string> score_below_threshold_since;

  bool is_binary() const { return outcome_count == 2; }
  // The original's computed fields (storage-api.md 3.7), in days, fractions included, against
  // `now` (the system clock by default, a fixed time in tests). Times are read with parse_iso(),
  // so an offset in the text is honoured (the original dropped it and read the wall time as UTC);
  // the host's TZ plays no part. Throw std::invalid_argument naming the field when its text is
  // not an ISO-8601 time.
  // days_to_end: nullopt without end_date, else max(0, (end_date - now) / 1 day).
  std::optional<double> days_to_end(SystemTime now = std::chrono::system_clock::now()) const;
  // market_age_days: nullopt without created_at, else (now - created_at) / 1 day, not clamped (a
  // created_at in the future is negative, as in the original).
  std::optional<double> market_age_days(SystemTime now = std::chrono::system_clock::now()) const;
};

struct PriceSnapshot {  // price_snapshots
  std::string condition_id;
  std::string snapshot_at;  // ISO UTC
  std::optional<double> price;
  std::optional<double> volume_24h;
};

struct StrategyTierRequest {  // strategy_tier_requests
  std::string strategy_name;
  std::string condition_id;
  std::int32_t requested_tier = 0;
  std::optional<std::string> reason;
  std::string requested_at;  // ISO UTC; empty means now
  std::string expires_at;    // ISO UTC, required
};

struct MarketQuery {
  std::optional<double> min_price, max_price;
  std::optional<double> min_volume, max_volume;  // on volume_24h
  std::optional<std::vector<std::string>> categories;
  std::optional<std::vector<std::string>> exclude_categories;
  std::optional<double> min_interestingness;
  std::optional<double> min_days_to_end, max_days_to_end;
  std::optional<double> min_market_age_days, max_market_age_days;
  std::optional<std::int32_t> tier;
  std::optional<std::int32_t> min_tier;
  bool include_resolved = false;
  bool binary_only = false;
  int limit = 100;
  int offset = 0;
};

struct UpsertBatchResult {
  std::size_t inserted = 0;
  std::size_t updated = 0;
};

struct MarketResolutionInfo {
  std::string condition_id;
  bool is_resolved = false;
  std::optional<std::string> resolution_outcome;
  std::optional<std::int32_t> winning_outcome_index;
  std::optional<std::string> resolved_at;
};

struct PositionPnl {
  bool won = false;
  double exit_price = 0;
  double pnl = 0;
  double pnl_pct = 0;
  std::optional<std::string> resolution_outcome;
  std::optional<std::string> resolved_at;
};

struct PriceChange {
  double change_1h = 0;
  double change_24h = 0;
};

template <> MarketUniverse from_row<MarketUniverse>(const pqxx::row& row);
template <> PriceSnapshot from_row<PriceSnapshot>(const pqxx::row& row);
template <> StrategyTierRequest from_row<StrategyTierRequest>(const pqxx::row& row);

class MarketUniverseRepository {
 public:
  explicit MarketUniverseRepository(DbTarget target) : target_(target) {}

  MarketUniverse upsert(const MarketUniverse& market) const;
  UpsertBatchResult upsert_batch(const std::vector<MarketUniverse>& markets) const;
  std::optional<MarketUniverse> get_by_condition_id(const std::string& condition_id) const;
  // The number of markets (storage-api.md 2.0 `count`).
  std::int64_t count() const;
  std::vector<MarketUniverse> query(const MarketQuery& q) const;
  std::vector<MarketUniverse> get_by_tier(std::int32_t tier, int limit = 1000) const;
  std::map<std::int32_t, std::int64_t> get_tier_counts() const;
  std::vector<MarketUniverse> get_top_by_score(int limit = 100) const;

  bool promote(const std::string& condition_id, std::int32_t target_tier,
               const std::optional<std::string>& reason = std::nullopt) const;
  bool demote(const std::string& condition_id, std::int32_t target_tier) const;
  bool set_pinned_tier(const std::string& condition_id, std::optional<std::int32_t> tier) const;

  std::int64_t update_interestingness_scores(const std::map<std::string, double>& scores) const;
  bool record_strategy_signal(const std::string& condition_id) const;

  bool save_price_snapshot(const PriceSnapshot& snapshot) const;
  std::optional<double> get_price_at_time(const std::string& condition_id, const std::string& at) const;
  std::map<std::string, PriceChange> compute_price_changes(const std::vector<std::string>& condition_ids) const;

  StrategyTierRequest create_tier_request(const StrategyTierRequest& request) const;
  std::vector<StrategyTierRequest> get_active_tier_requests(std::int32_t min_tier = 2) const;
  std::int64_t cleanup_expired_requests() const;

  std::vector<MarketUniverse> get_resolved_markets(const std::optional<std::string>& since = std::nullopt,
                                                   int limit = 1000) const;
  std::optional<MarketResolutionInfo> get_resolution(const std::string& condition_id) const;
  static bool check_position_won(std::int32_t outcome_index, std::int32_t winning_outcome_index) {
    return outcome_index == winning_outcome_index;
  }
  std::optional<PositionPnl> get_pnl_for_position(const std::string& condition_id, std::int32_t outcome_index,
                                                  double entry_price, double size) const;

 private:
  DbTarget target_;
};

}  // namespace pm

#pragma once
// Watchlist and scoring repositories, storage-api.md 2.15.
// TradeWatchlistRepository: `trade_watchlist` (key token_id). Its *_at columns are BIGINT epoch
// *seconds* from now_epoch_s(), a true UTC clock (fix for D11).
// - create() upserts all 14 columns: created_at = the item's value when given, else now (only
//   nullopt counts as missing, fix for D33; a given 0 is stored as given); updated_at = now. On
//   conflict every column is overwritten except initial_score and created_at, which keep their
//   first values.
//   status must be a WatchlistStatus text (nullopt is refused; D25). The times given are checked
//   before any SQL, as every other time column is (require_timestamp, timestamp_unit.h):
//   last_scored_at and created_at are epoch seconds (schema.md: trade_watchlist.*_at); each, when
//   given (created_at: and not 0), must be > 0, of the unit's size (10^11 and above is
//   milliseconds) and at most kMaxFutureMs (24 h) after now, else TimestampUnitError (a
//   RefusedValueError) naming the column, the token and the value, and nothing is written. A
//   last_scored_at or created_at in milliseconds was stored, and read as a time in the year 50000.
//   trigger_timestamp is stored as given (storage-api.md: the caller's unit).
// - get_watching() by current_score DESC with NULL scores *last* (fix for D28), token_id
//   tie-breaker; get_by_status() by updated_at DESC NULLS LAST, token_id tie-breaker.
// - update_score() sets current_score, time_to_end_hours and last_scored_at = updated_at = now;
//   nullopt for a missing token. It does not look at the status (as in the original).
// - promote() / mark_traded() / mark_expired() are guarded transitions (the original had no
//   precondition): watching -> promoted | traded | expired; promoted -> traded | expired; traded and
//   expired are final. A refused transition or a missing token returns nullopt and changes
//   nothing (the guard is in the UPDATE's WHERE). create() may still re-add an entry (an upsert
//   is a new watch, as in the original).
// MarketScoresCacheRepository: `market_scores_cache` (key condition_id).
// - upsert() overwrites all columns; updated_at is always now (canonical ISO), the model's value is
//   ignored (as in the original).
// - get_passing(limit): passes_filters = 1, model_score DESC NULLS LAST, condition_id tie-breaker.
// - get_by_category_flags(filter) (fix for D27): every given flag adds `column = 1` (true) or
//   `= 0` (false); passing_only and limit are explicit fields of the filter and apply whether or
//   not flags are given. The original silently returned get_passing() when no flag was given; here
//   no flags means no flag condition. Same ordering as get_passing().
// ScoreHistoryRepository: `score_history` (key id SERIAL); scored_at is epoch seconds.
// - create() inserts (the input's id is ignored); never re-run after COMMIT was sent (D13). A
//   scored_at, when given, that is not > 0, of seconds' size (below 10^11) or is more than
//   kMaxFutureMs (24 h) after now throws TimestampUnitError (a RefusedValueError) naming the
//   column and the value, before any SQL: a time in milliseconds was stored, and cleanup_old never
//   deleted it while get_recent returned it for ever.
// - get_by_token() newest first (scored_at DESC NULLS LAST, id DESC); get_recent(since):
//   scored_at >= since, newest first, id DESC tie-breaker. A since > 0 that is not of seconds'
//   size throws TimestampUnitError before any SQL (one in milliseconds returned nothing); 0 or
//   less: every row with a scored_at.
// - cleanup_old(days) deletes rows with scored_at < now_epoch_s() - days * 86400 and returns how
//   many (affected_rows, D20). Rows with a NULL scored_at are never deleted.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "repos/repo_support.h"

namespace pm {

enum class WatchlistStatus { Watching, Promoted, Expired, Traded };
std::string_view to_string(WatchlistStatus status);  // "watching", "promoted", "expired", "traded"
std::optional<WatchlistStatus> parse_watchlist_status(std::string_view text);
bool can_transition(WatchlistStatus from, WatchlistStatus to);

class TradeWatchlistRepository : public BaseRepository<TradeWatchlist, std::string> {
 public:
  explicit TradeWatchlistRepository(DbTarget target)
      : BaseRepository(target, "trade_watchlist", "token_id", "text") {}

  // Throws std::invalid_argument for a missing or unknown status, and TimestampUnitError (a
  // RefusedValueError, also std::invalid_argument) for a time refused as above; nothing is written.
  TradeWatchlist create(const TradeWatchlist& item) const;
  std::vector<TradeWatchlist> get_watching() const;
  std::vector<TradeWatchlist> get_by_status(WatchlistStatus status) const;
  std::optional<TradeWatchlist> update_score(const std::string& token_id, double score,
                                             double time_to_end_hours) const;
  std::optional<TradeWatchlist> promote(const std::string& token_id) const;
  std::optional<TradeWatchlist> mark_traded(const std::string& token_id) const;
  std::optional<TradeWatchlist> mark_expired(const std::string& token_id) const;

 private:
  std::optional<TradeWatchlist> transition(const std::string& token_id, WatchlistStatus to) const;
};

struct CategoryFlagFilter {
  std::optional<bool> is_weather;
  std::optional<bool> is_crypto;
  std::optional<bool> is_politics;
  std::optional<bool> is_sports;
  bool passing_only = false;       // also require passes_filters = 1
  std::optional<int> limit;        // nullopt: no limit
};

class MarketScoresCacheRepository : public BaseRepository<MarketScoresCache, std::string> {
 public:
  explicit MarketScoresCacheRepository(DbTarget target)
      : BaseRepository(target, "market_scores_cache", "condition_id", "text") {}

  MarketScoresCache upsert(const MarketScoresCache& cache) const;
  std::optional<MarketScoresCache> get_by_condition(const std::string& condition_id) const;
  std::vector<MarketScoresCache> get_passing(int limit = 100) const;
  std::vector<MarketScoresCache> get_by_category_flags(const CategoryFlagFilter& filter) const;
};

class ScoreHistoryRepository : public BaseRepository<ScoreHistory, std::int32_t> {
 public:
  explicit ScoreHistoryRepository(DbTarget target)
      : BaseRepository(target, "score_history", "id", "integer") {}

  // Throws TimestampUnitError for a scored_at refused as above; nothing is written.
  ScoreHistory create(const ScoreHistory& history) const;
  std::vector<ScoreHistory> get_by_token(const std::string& token_id, int limit = 100) const;
  // since in epoch seconds; TimestampUnitError for one > 0 that is not of seconds' size.
  std::vector<ScoreHistory> get_recent(std::int64_t since_timestamp) const;
  // Throws std::invalid_argument for negative days.
  std::int64_t cleanup_old(int days = 30) const;
};

}  // namespace pm

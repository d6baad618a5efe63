#include "repos/watchlist_repository.h"

#include "repos/timestamp_unit.h"
#include "repos/util/clock.h"

namespace pm {

namespace {

constexpr std::array<EnumText<WatchlistStatus>, 4> kWatchlistStatuses{{
    {WatchlistStatus::Watching, "watching"},
    {WatchlistStatus::Promoted, "promoted"},
    {WatchlistStatus::Expired, "expired"},
    {WatchlistStatus::Traded, "traded"},
}};

std::optional<int> as_flag(std::optional<bool> flag) {
  if (!flag) return std::nullopt;
  return *flag ? 1 : 0;
}

// Throws TimestampUnitError unless `epoch`, when given, is acceptable in `unit`: > 0, of the unit's
// size and at most kMaxFutureMs after now (require_timestamp, the rule of every other time column).
// `field` names the column and the row, built only for a refusal.
template <class Field>
void require_given_time(const std::optional<std::int64_t>& epoch, TimestampUnit unit, std::string_view unit_source,
                        Field&& field) {
  if (!epoch) return;
  const std::int64_t newest = newest_accepted(FutureBound::FromNow, unit);
  if (acceptable_timestamp(*epoch, unit, newest)) return;
  require_timestamp(*epoch, unit, newest, field(), unit_source);
}

// A watchlist item's *_at times, epoch seconds (schema.md). trigger_timestamp is left as the caller
// gives it (storage-api.md 2.15: the caller's unit; schema.md names none for this table). A
// created_at of 0 is stored as given (D33's fix: only nullopt means now), so a row stored so before
// can be upserted again.
void require_times(const TradeWatchlist& w) {
  const auto of = [&](const char* column) {
    return [&w, column] { return "trade_watchlist." + std::string(column) + " of token '" + w.token_id + "'"; };
  };
  require_given_time(w.last_scored_at, TimestampUnit::Seconds, kScoringUnitSource, of("last_scored_at"));
  if (w.created_at != std::optional<std::int64_t>{0})
    require_given_time(w.created_at, TimestampUnit::Seconds, kScoringUnitSource, of("created_at"));
}

}  // namespace

std::string_view to_string(WatchlistStatus status) { return enum_text(status, kWatchlistStatuses); }
std::optional<WatchlistStatus> parse_watchlist_status(std::string_view text) {
  return parse_enum(text, kWatchlistStatuses);
}

bool can_transition(WatchlistStatus from, WatchlistStatus to) {
  using S = WatchlistStatus;
  switch (from) {
    case S::Watching: return to == S::Promoted || to == S::Traded || to == S::Expired;
    case S::Promoted: return to == S::Traded || to == S::Expired;
    case S::Expired:
    case S::Traded: return false;
  }
  return false;
}

// ---- TradeWatchlistRepository ----

TradeWatchlist TradeWatchlistRepository::create(const TradeWatchlist& w) const {
  if (!w.status) throw std::invalid_argument("trade_watchlist.status must be given");
  detail::require_enum(*w.status, kWatchlistStatuses, "trade_watchlist.status");
  require_times(w);
  detail::require_finite({{w.trigger_price, "trade_watchlist.trigger_price"},
                          {w.trigger_size, "trade_watchlist.trigger_size"},
                          {w.initial_score, "trade_watchlist.initial_score"},
                          {w.current_score, "trade_watchlist.current_score"},
                          {w.time_to_end_hours, "trade_watchlist.time_to_end_hours"}});
  const std::int64_t now = now_epoch_s();
  const std::int64_t created_at = w.created_at.value_or(now);
  return target_.run([&](pqxx::transaction_base& tx) {
    return from_row<TradeWatchlist>(tx.exec_params1(
        R"(INSERT INTO trade_watchlist
             (token_id, market_id, condition_id, question, trigger_price, trigger_size,
              trigger_timestamp, initial_score, current_score, time_to_end_hours, last_scored_at,
              status, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5::real, $6::real, $7, $8::real, $9::real, $10::real, $11, $12,
                   $13, $14)
           ON CONFLICT (token_id) DO UPDATE
             SET market_id = EXCLUDED.market_id, condition_id = EXCLUDED.condition_id,
                 question = EXCLUDED.question, trigger_price = EXCLUDED.trigger_price,
                 trigger_size = EXCLUDED.trigger_size, trigger_timestamp = EXCLUDED.trigger_timestamp,
                 current_score = EXCLUDED.current_score,
                 time_to_end_hours = EXCLUDED.time_to_end_hours,
                 last_scored_at = EXCLUDED.last_scored_at, status = EXCLUDED.status,
                 updated_at = EXCLUDED.updated_at
           RETURNING *)",
        w.token_id, w.market_id, w.condition_id, w.question, w.trigger_price, w.trigger_size,
        w.trigger_timestamp, w.initial_score, w.current_score, w.time_to_end_hours, w.last_scored_at,
        w.status, created_at, now));
  });
}

std::vector<TradeWatchlist> TradeWatchlistRepository::get_watching() const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<TradeWatchlist>(tx.exec(
        R"(SELECT * FROM trade_watchlist WHERE status = 'watching'
           ORDER BY current_score DESC NULLS LAST, token_id)"));
  });
}

std::vector<TradeWatchlist> TradeWatchlistRepository::get_by_status(WatchlistStatus status) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<TradeWatchlist>(tx.exec_params(
        "SELECT * FROM trade_watchlist WHERE status = $1 ORDER BY updated_at DESC NULLS LAST, token_id",
        std::string(to_string(status))));
  });
}

std::optional<TradeWatchlist> TradeWatchlistRepository::update_score(const std::string& token_id, double score,
                                                                     double time_to_end_hours) const {
  detail::require_finite(score, "trade_watchlist.current_score");
  detail::require_finite(time_to_end_hours, "trade_watchlist.time_to_end_hours");
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_optional_model<TradeWatchlist>(tx.exec_params(
        R"(UPDATE trade_watchlist
           SET current_score = $2::real, time_to_end_hours = $3::real, last_scored_at = $4,
               updated_at = $4
           WHERE token_id = $1 RETURNING *)",
        token_id, score, time_to_end_hours, now_epoch_s()));
  });
}

std::optional<TradeWatchlist> TradeWatchlistRepository::transition(const std::string& token_id,
                                                                   WatchlistStatus to) const {
  const std::string from =
      detail::text_array(kWatchlistStatuses, [&](WatchlistStatus s) { return can_transition(s, to); });
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_optional_model<TradeWatchlist>(tx.exec_params(
        R"(UPDATE trade_watchlist SET status = $2, updated_at = $3
           WHERE token_id = $1 AND status = ANY($4::text[]) RETURNING *)",
        token_id, std::string(to_string(to)), now_epoch_s(), from));
  });
}

std::optional<TradeWatchlist> TradeWatchlistRepository::promote(const std::string& token_id) const {
  return transition(token_id, WatchlistStatus::Promoted);
}
std::optional<TradeWatchlist> TradeWatchlistRepository::mark_traded(const std::string& token_id) const {
  return transition(token_id, WatchlistStatus::Traded);
}
std::optional<TradeWatchlist> TradeWatchlistRepository::mark_expired(const std::string& token_id) const {
  return transition(token_id, WatchlistStatus::Expired);
}

// ---- MarketScoresCacheRepository ----

MarketScoresCache MarketScoresCacheRepository::upsert(const MarketScoresCache& c) const {
  detail::require_finite({{c.best_bid, "market_scores_cache.best_bid"},
                          {c.best_ask, "market_scores_cache.best_ask"},
                          {c.spread_pct, "market_scores_cache.spread_pct"},
                          {c.liquidity, "market_scores_cache.liquidity"},
                          {c.volume, "market_scores_cache.volume"},
                          {c.time_to_end_hours, "market_scores_cache.time_to_end_hours"},
                          {c.model_score, "market_scores_cache.model_score"}});
  return target_.run([&](pqxx::transaction_base& tx) {
    return from_row<MarketScoresCache>(tx.exec_params1(
        R"(INSERT INTO market_scores_cache
             (condition_id, market_id, question, category, best_bid, best_ask, spread_pct, liquidity,
              volume, end_date, time_to_end_hours, model_score, passes_filters, filter_rejections,
              is_weather, is_crypto, is_politics, is_sports, updated_at)
           VALUES ($1, $2, $3, $4, $5::real, $6::real, $7::real, $8::real, $9::real, $10, $11::real,
                   $12::real, $13, $14, $15, $16, $17, $18, $19)
           ON CONFLICT (condition_id) DO UPDATE
             SET market_id = EXCLUDED.market_id, question = EXCLUDED.question,
                 category = EXCLUDED.category, best_bid = EXCLUDED.best_bid,
                 best_ask = EXCLUDED.best_ask, spread_pct = EXCLUDED.spread_pct,
                 liquidity = EXCLUDED.liquidity, volume = EXCLUDED.volume,
                 end_date = EXCLUDED.end_date, time_to_end_hours = EXCLUDED.time_to_end_hours,
                 model_score = EXCLUDED.model_score, passes_filters = EXCLUDED.passes_filters,
                 filter_rejections = EXCLUDED.filter_rejections, is_weather = EXCLUDED.is_weather,
                 is_crypto = EXCLUDED.is_crypto, is_politics = EXCLUDED.is_politics,
                 is_sports = EXCLUDED.is_sports, updated_at = EXCLUDED.updated_at
           RETURNING *)",
        c.condition_id, c.market_id, c.question, c.category, c.best_bid, c.best_ask, c.spread_pct,
        c.liquidity, c.volume, c.end_date, c.time_to_end_hours, c.model_score, c.passes_filters,
        c.filter_rejections, c.is_weather, c.is_crypto, c.is_politics, c.is_sports, now_iso()));
  });
}

std::optional<MarketScoresCache> MarketScoresCacheRepository::get_by_condition(const std::string& condition_id) const {
  return get_by_id(condition_id);
}

std::vector<MarketScoresCache> MarketScoresCacheRepository::get_passing(int limit) const {
  detail::check_limit(limit);
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<MarketScoresCache>(tx.exec_params(
        R"(SELECT * FROM market_scores_cache WHERE passes_filters = 1
           ORDER BY model_score DESC NULLS LAST, condition_id LIMIT $1)",
        limit));
  });
}

std::vector<MarketScoresCache> MarketScoresCacheRepository::get_by_category_flags(
    const CategoryFlagFilter& f) const {
  if (f.limit) detail::check_limit(*f.limit);
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<MarketScoresCache>(tx.exec_params(
        R"(SELECT * FROM market_scores_cache
           WHERE ($1::integer IS NULL OR is_weather = $1::integer)
             AND ($2::integer IS NULL OR is_crypto = $2::integer)
             AND ($3::integer IS NULL OR is_politics = $3::integer)
             AND ($4::integer IS NULL OR is_sports = $4::integer)
             AND (NOT $5::boolean OR passes_filters = 1)
           ORDER BY model_score DESC NULLS LAST, condition_id
           LIMIT $6::bigint)",
        as_flag(f.is_weather), as_flag(f.is_crypto), as_flag(f.is_politics), as_flag(f.is_sports),
        f.passing_only, f.limit));
  });
}

// ---- ScoreHistoryRepository ----

ScoreHistory ScoreHistoryRepository::create(const ScoreHistory& h) const {
  require_given_time(h.scored_at, TimestampUnit::Seconds, kScoringUnitSource, [&] {
    return "score_history.scored_at" + (h.token_id ? " of token '" + *h.token_id + "'" : std::string());
  });
  detail::require_finite(h.score, "score_history.score");
  detail::require_finite(h.time_to_end_hours, "score_history.time_to_end_hours");
  return target_.run([&](pqxx::transaction_base& tx) {
    return from_row<ScoreHistory>(tx.exec_params1(
        R"(INSERT INTO score_history (token_id, score, time_to_end_hours, scored_at)
           VALUES ($1, $2::real, $3::real, $4) RETURNING *)",
        h.token_id, h.score, h.time_to_end_hours, h.scored_at));
  });
}

std::vector<ScoreHistory> ScoreHistoryRepository::get_by_token(const std::string& token_id, int limit) const {
  detail::check_limit(limit);
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<ScoreHistory>(tx.exec_params(
        R"(SELECT * FROM score_history WHERE token_id = $1
           ORDER BY scored_at DESC NULLS LAST, id DESC LIMIT $2)",
        token_id, limit));
  });
}

std::vector<ScoreHistory> ScoreHistoryRepository::get_recent(std::int64_t since_timestamp) const {
  // A since in milliseconds is above every stored time and would return nothing, ever.
  if (since_timestamp > 0)
    require_timestamp_unit(since_timestamp, TimestampUnit::Seconds, "score_history get_recent since_timestamp",
                           kScoringUnitSource);
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<ScoreHistory>(tx.exec_params(
        "SELECT * FROM score_history WHERE scored_at >= $1 ORDER BY scored_at DESC, id DESC",
        since_timestamp));
  });
}

std::int64_t ScoreHistoryRepository::cleanup_old(int days) const {
  if (days < 0) throw std::invalid_argument("days must not be negative");
  const std::int64_t cutoff = now_epoch_s() - static_cast<std::int64_t>(days) * 86'400;
  return target_.run([&](pqxx::transaction_base& tx) {
    return static_cast<std::int64_t>(
        tx.exec_params("DELETE FROM score_history WHERE scored_at < $1", cutoff).affected_rows());
  });
}

}  // namespace pm

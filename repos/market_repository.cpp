#include "repos/market_repository.h"

namespace pm {

// ---- StreamWatchlistRepository ----

StreamWatchlist StreamWatchlistRepository::upsert(const StreamWatchlist& w) const {
  const std::string generated_at = detail::write_iso_or_now(w.generated_at, "stream_watchlist.generated_at");
  detail::require_finite({{w.best_bid, "stream_watchlist.best_bid"},
                          {w.best_ask, "stream_watchlist.best_ask"},
                          {w.liquidity, "stream_watchlist.liquidity"},
                          {w.volume, "stream_watchlist.volume"}});
  return target_.run([&](pqxx::transaction_base& tx) {
    return from_row<StreamWatchlist>(tx.exec_params1(
        R"(INSERT INTO stream_watchlist
             (market_id, question, slug, category, best_bid, best_ask, liquidity, volume, end_date,
              generated_at, condition_id)
           VALUES ($1, $2, $3, $4, $5::real, $6::real, $7::real, $8::real, $9, $10, $11)
           ON CONFLICT (market_id) DO UPDATE
             SET question = EXCLUDED.question, slug = EXCLUDED.slug, category = EXCLUDED.category,
                 best_bid = EXCLUDED.best_bid, best_ask = EXCLUDED.best_ask,
                 liquidity = EXCLUDED.liquidity, volume = EXCLUDED.volume,
                 end_date = EXCLUDED.end_date, generated_at = EXCLUDED.generated_at,
                 condition_id = EXCLUDED.condition_id
           RETURNING *)",
        w.market_id, w.question, w.slug, w.category, w.best_bid, w.best_ask, w.liquidity, w.volume,
        w.end_date, generated_at, w.condition_id));
  });
}

std::vector<StreamWatchlist> StreamWatchlistRepository::get_all() const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<StreamWatchlist>(
        tx.exec(R"(SELECT * FROM stream_watchlist
                   ORDER BY pm_text_time(generated_at) DESC NULLS LAST, generated_at DESC, market_id)"));
  });
}

std::vector<StreamWatchlist> StreamWatchlistRepository::get_by_category(const std::string& category) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<StreamWatchlist>(tx.exec_params(
        "SELECT * FROM stream_watchlist WHERE category = $1 ORDER BY volume DESC NULLS LAST, market_id",
        category));
  });
}

std::int64_t StreamWatchlistRepository::clear() const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return static_cast<std::int64_t>(tx.exec("DELETE FROM stream_watchlist").affected_rows());
  });
}

// ---- ResolutionRepository ----

PolymarketResolution ResolutionRepository::upsert(const PolymarketResolution& r) const {
  const auto resolved_at = detail::write_iso(r.resolved_at, "polymarket_resolutions.resolved_at");
  return target_.run([&](pqxx::transaction_base& tx) {
    return from_row<PolymarketResolution>(tx.exec_params1(
        R"(INSERT INTO polymarket_resolutions
             (condition_id, winning_outcome_index, winning_outcome, resolved_at)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (condition_id) DO UPDATE
             SET winning_outcome_index = EXCLUDED.winning_outcome_index,
                 winning_outcome = EXCLUDED.winning_outcome, resolved_at = EXCLUDED.resolved_at
           RETURNING *)",
        r.condition_id, r.winning_outcome_index, r.winning_outcome, resolved_at));
  });
}

std::optional<PolymarketResolution> ResolutionRepository::get_by_condition(const std::string& condition_id) const {
  return get_by_id(condition_id);
}

bool ResolutionRepository::is_resolved(const std::string& condition_id) const { return exists(condition_id); }

std::vector<PolymarketResolution> ResolutionRepository::get_recent(int limit) const {
  detail::check_limit(limit);
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<PolymarketResolution>(tx.exec_params(
        R"(SELECT * FROM polymarket_resolutions WHERE resolved_at IS NOT NULL
           ORDER BY pm_text_time(resolved_at) DESC NULLS LAST, resolved_at DESC, condition_id LIMIT $1)",
        limit));
  });
}

// ---- TokenMetaRepository ----

PolymarketTokenMeta TokenMetaRepository::upsert(const PolymarketTokenMeta& m) const {
  const auto fetched_at = detail::write_iso(m.fetched_at, "polymarket_token_meta.fetched_at");
  return target_.run([&](pqxx::transaction_base& tx) {
    return from_row<PolymarketTokenMeta>(tx.exec_params1(
        R"(INSERT INTO polymarket_token_meta
             (token_id, condition_id, market_id, outcome_index, outcome, question, fetched_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (token_id) DO UPDATE
             SET condition_id = EXCLUDED.condition_id, market_id = EXCLUDED.market_id,
                 outcome_index = EXCLUDED.outcome_index, outcome = EXCLUDED.outcome,
                 question = EXCLUDED.question, fetched_at = EXCLUDED.fetched_at
           RETURNING *)",
        m.token_id, m.condition_id, m.market_id, m.outcome_index, m.outcome, m.question, fetched_at));
  });
}

std::optional<PolymarketTokenMeta> TokenMetaRepository::get_by_token(const std::string& token_id) const {
  return get_by_id(token_id);
}

std::vector<PolymarketTokenMeta> TokenMetaRepository::get_by_condition(const std::string& condition_id) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<PolymarketTokenMeta>(tx.exec_params(
        R"(SELECT * FROM polymarket_token_meta WHERE condition_id = $1
           ORDER BY outcome_index ASC NULLS LAST, token_id)",
        condition_id));
  });
}

std::optional<std::string> TokenMetaRepository::get_condition_id(const std::string& token_id) const {
  return target_.run([&](pqxx::transaction_base& tx) -> std::optional<std::string> {
    auto r = tx.exec_params("SELECT condition_id FROM polymarket_token_meta WHERE token_id = $1", token_id);
    if (r.empty()) return std::nullopt;
    return optional_field<std::string>(r[0][0]);
  });
}

}  // namespace pm

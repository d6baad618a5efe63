#pragma once
// Market data repositories, storage-api.md 2.14. Every upsert overwrites all non-key columns with
// the given values, NULLs included (as in the original), and returns the stored row.
// StreamWatchlistRepository: `stream_watchlist` (key market_id).
// - upsert(): generated_at is stored canonical (empty: now; D8/D12); end_date is a market's free-form
//   end date and is stored as given.
// - get_all() newest first by generated_at (by time, D8: repo_support.h); get_by_category() by
//   volume DESC with NULL volumes *last* (fix for D28: the original put them first); both with
//   market_id as tie-breaker.
// - clear() deletes every row and returns how many (affected_rows, D20).
// ResolutionRepository: `polymarket_resolutions` (key condition_id).
// - upsert(): resolved_at (nullable) stored canonical. is_resolved() is true when a row exists,
//   even one whose outcome fields are NULL (the original's semantics).
// - get_recent(limit): rows with a resolved_at, newest first (by time, D8: repo_support.h),
//   condition_id tie-breaker.
// TokenMetaRepository: `polymarket_token_meta` (key token_id).
// - upsert(): fetched_at (nullable) stored canonical. get_by_condition() orders by outcome_index
//   ASC, NULLs last, token_id tie-breaker. get_condition_id() is nullopt both for a missing row and
//   for a NULL condition_id (as in the original).
// Unparseable *_at text throws std::invalid_argument before any SQL runs.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "repos/repo_support.h"

namespace pm {

class StreamWatchlistRepository : public BaseRepository<StreamWatchlist, std::string> {
 public:
  explicit StreamWatchlistRepository(DbTarget target)
      : BaseRepository(target, "stream_watchlist", "market_id", "text") {}

  StreamWatchlist upsert(const StreamWatchlist& item) const;
  std::vector<StreamWatchlist> get_all() const;
  std::vector<StreamWatchlist> get_by_category(const std::string& category) const;
  std::int64_t clear() const;
};

class ResolutionRepository : public BaseRepository<PolymarketResolution, std::string> {
 public:
  explicit ResolutionRepository(DbTarget target)
      : BaseRepository(target, "polymarket_resolutions", "condition_id", "text") {}

  PolymarketResolution upsert(const PolymarketResolution& resolution) const;
  std::optional<PolymarketResolution> get_by_condition(const std::string& condition_id) const;
  bool is_resolved(const std::string& condition_id) const;
  std::vector<PolymarketResolution> get_recent(int limit = 100) const;
};

class TokenMetaRepository : public BaseRepository<PolymarketTokenMeta, std::string> {
 public:
  explicit TokenMetaRepository(DbTarget target)
      : BaseRepository(target, "polymarket_token_meta", "token_id", "text") {}

  PolymarketTokenMeta upsert(const PolymarketTokenMeta& meta) const;
  std::optional<PolymarketTokenMeta> get_by_token(const std::string& token_id) const;
  std::vector<PolymarketTokenMeta> get_by_condition(const std::string& condition_id) const;
  std::optional<std::string> get_condition_id(const std::string& token_id) const;
};

}  // namespace pm

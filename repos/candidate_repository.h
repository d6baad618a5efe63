#pragma once
// CandidateRepository: `polymarket_candidates` (key id SERIAL), storage-api.md 2.5.
// - create() inserts (no conflict clause: duplicates are allowed, as in the original) and returns
//   the stored row with its new id. Run through DbTarget, so on a Database it is never re-run
//   after COMMIT was sent (fix for D13). `status` must be a CandidateStatus text (D25) and
//   `created_at` any ISO-8601 text (empty: now); it is stored canonical (D8/D12). id and
//   updated_at of the input are ignored.
// - Lists order by created_at (by time, D8: repo_support.h) with `id` as tie-breaker in the same
//   direction (D28): get_pending oldest first, get_by_status and get_by_token newest first.
// - update_status() guards its transition (fix for "no status transition is checked"): allowed are
//   pending->pending (a re-score), pending->approved|rejected, approved->executed|rejected.
//   executed and rejected are final. The guard is part of the UPDATE's WHERE, so it holds under
//   concurrency. A refused transition and a missing id both return nullopt (the row is left
//   untouched); get_by_id() tells them apart. A nullopt score keeps the stored score.
// CandidateWatermarkRepository: `candidate_watermarks` (key threshold REAL, bound as $n::real, D7).
// - update() keeps the later of the stored and the given created_at *by time*, not by text (fix
//   for D8): both are parsed (a stored value that does not parse counts as older), the result is
//   stored canonical. One statement (INSERT .. ON CONFLICT DO UPDATE whose SET compares the stored
//   and the given time with pm_text_time), so it is atomic on any target, a caller's
//   pqxx::nontransaction included: concurrent updates never move it backwards. (It inserted, then
//   SELECT .. FOR UPDATE, compared in C++ and UPDATEd unconditionally: in autocommit the row lock
//   ended with the SELECT, and an update committed in between was overwritten with an older time.)
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "repos/repo_support.h"

namespace pm {

enum class CandidateStatus { Pending, Approved, Rejected, Executed };
std::string_view to_string(CandidateStatus status);  // "pending", "approved", ...
std::optional<CandidateStatus> parse_candidate_status(std::string_view text);
bool can_transition(CandidateStatus from, CandidateStatus to);

class CandidateRepository : public BaseRepository<PolymarketCandidate, std::int32_t> {
 public:
  explicit CandidateRepository(DbTarget target)
      : BaseRepository(target, "polymarket_candidates", "id", "integer") {}

  // Throws std::invalid_argument for an unknown status or an unparseable created_at, and
  // TimestampUnitError (a RefusedValueError) for a trigger_timestamp that is not epoch ms (> 0, of
  // millisecond size) or is more than kMaxFutureMs (24 h) after now: the rule of every trigger
  // write (require_timestamp, trigger_repository.h); nothing is written. (A value in seconds was
  // stored.)
  PolymarketCandidate create(const PolymarketCandidate& candidate) const;

  std::vector<PolymarketCandidate> get_pending(int limit = 100) const;  // oldest first
  std::vector<PolymarketCandidate> get_by_status(CandidateStatus status, int limit = 100) const;
  std::vector<PolymarketCandidate> get_by_token(const std::string& token_id) const;  // no limit

  // Sets status, score (when given) and updated_at = now; nullopt when missing or refused.
  std::optional<PolymarketCandidate> update_status(std::int32_t candidate_id, CandidateStatus status,
                                                   std::optional<double> score = std::nullopt) const;
  std::optional<PolymarketCandidate> approve(std::int32_t candidate_id) const;
  std::optional<PolymarketCandidate> reject(std::int32_t candidate_id,
                                            std::optional<double> score = std::nullopt) const;
  std::optional<PolymarketCandidate> mark_executed(std::int32_t candidate_id) const;
};

class CandidateWatermarkRepository : public BaseRepository<CandidateWatermark, double> {
 public:
  explicit CandidateWatermarkRepository(DbTarget target)
      : BaseRepository(target, "candidate_watermarks", "threshold", "real") {}

  std::optional<CandidateWatermark> get(double threshold) const;
  // The stored text, or nullopt when there is no row (as in the original).
  std::optional<std::string> get_last_created_at(double threshold) const;
  // Stores the later of the stored and the given created_at (by time, canonical text) and returns
  // the row as stored. Throws std::invalid_argument when created_at is not ISO-8601, before any
  // SQL. updated_at is always now.
  CandidateWatermark update(double threshold, const std::string& created_at) const;
};

}  // namespace pm

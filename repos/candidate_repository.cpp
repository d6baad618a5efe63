#include "repos/candidate_repository.h"

#include "repos/timestamp_unit.h"
#include "repos/util/clock.h"

namespace pm {

namespace {

constexpr std::array<EnumText<CandidateStatus>, 4> kCandidateStatuses{{
    {CandidateStatus::Pending, "pending"},
    {CandidateStatus::Approved, "approved"},
    {CandidateStatus::Rejected, "rejected"},
    {CandidateStatus::Executed, "executed"},
}};

// Inserts the watermark or keeps the later of the stored and the given ($2, canonical) created_at,
// by time, in one statement: ON CONFLICT locks the stored row and its SET reads that row's latest
// version, so the comparison and the write are atomic on any target, a caller's autocommit
// nontransaction included. A stored time that pm_text_time cannot read (NULL) counts as older; a
// stored time that is kept is re-rendered canonical (the to_char shape is format_iso's, as
// text_time_test checks). updated_at is always $3 (now).
constexpr const char* kAdvanceCandidateWatermark = R"SQL(
INSERT INTO candidate_watermarks AS w (threshold, last_created_at, updated_at)
VALUES ($1::real, $2, $3)
ON CONFLICT (threshold) DO UPDATE
  SET last_created_at = CASE
        WHEN pm_text_time(w.last_created_at) >= pm_text_time(EXCLUDED.last_created_at)
          THEN to_char(pm_text_time(w.last_created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
        ELSE EXCLUDED.last_created_at
      END,
      updated_at = EXCLUDED.updated_at
RETURNING *)SQL";

}  // namespace

std::string_view to_string(CandidateStatus status) { return enum_text(status, kCandidateStatuses); }

std::optional<CandidateStatus> parse_candidate_status(std::string_view text) {
  return parse_enum(text, kCandidateStatuses);
}

bool can_transition(CandidateStatus from, CandidateStatus to) {
  using S = CandidateStatus;
  switch (from) {
    case S::Pending: return to == S::Pending || to == S::Approved || to == S::Rejected;
    case S::Approved: return to == S::Executed || to == S::Rejected;
    case S::Rejected:
    case S::Executed: return false;
  }
  return false;
}

PolymarketCandidate CandidateRepository::create(const PolymarketCandidate& c) const {
  detail::require_enum(c.status, kCandidateStatuses, "polymarket_candidates.status");
  require_timestamp(c.trigger_timestamp, TimestampUnit::Milliseconds,
                    newest_accepted(FutureBound::FromNow, TimestampUnit::Milliseconds),
                    "polymarket_candidates.trigger_timestamp of token '" + c.token_id + "'", kTriggerUnitSource);
  const std::string created_at = detail::write_iso_or_now(c.created_at, "polymarket_candidates.created_at");
  detail::require_finite(c.threshold, "polymarket_candidates.threshold");
  detail::require_finite(c.price, "polymarket_candidates.price");
  detail::require_finite(c.score, "polymarket_candidates.score");
  detail::require_finite(c.model_score, "polymarket_candidates.model_score");
  return target_.run([&](pqxx::transaction_base& tx) {
    return from_row<PolymarketCandidate>(tx.exec_params1(
        R"(INSERT INTO polymarket_candidates
             (token_id, condition_id, threshold, trigger_timestamp, price, status, score, created_at,
              model_score, model_version, outcome, outcome_index)
           VALUES ($1, $2, $3::real, $4, $5::real, $6, $7::real, $8, $9::real, $10, $11, $12)
           RETURNING *)",
        c.token_id, c.condition_id, c.threshold, c.trigger_timestamp, c.price, c.status, c.score,
        created_at, c.model_score, c.model_version, c.outcome, c.outcome_index));
  });
}

std::vector<PolymarketCandidate> CandidateRepository::get_pending(int limit) const {
  detail::check_limit(limit);
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<PolymarketCandidate>(tx.exec_params(
        R"(SELECT * FROM polymarket_candidates WHERE status = 'pending'
           ORDER BY pm_text_time(created_at) ASC NULLS LAST, created_at ASC, id ASC LIMIT $1)",
        limit));
  });
}

std::vector<PolymarketCandidate> CandidateRepository::get_by_status(CandidateStatus status, int limit) const {
  detail::check_limit(limit);
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<PolymarketCandidate>(tx.exec_params(
        R"(SELECT * FROM polymarket_candidates WHERE status = $1
           ORDER BY pm_text_time(created_at) DESC NULLS LAST, created_at DESC, id DESC LIMIT $2)",
        std::string(to_string(status)), limit));
  });
}

std::vector<PolymarketCandidate> CandidateRepository::get_by_token(const std::string& token_id) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<PolymarketCandidate>(tx.exec_params(
        R"(SELECT * FROM polymarket_candidates WHERE token_id = $1
           ORDER BY pm_text_time(created_at) DESC NULLS LAST, created_at DESC, id DESC)",
        token_id));
  });
}

std::optional<PolymarketCandidate> CandidateRepository::update_status(std::int32_t candidate_id,
                                                                      CandidateStatus status,
                                                                      std::optional<double> score) const {
  detail::require_finite(score, "polymarket_candidates.score");
  const std::string from = detail::text_array(
      kCandidateStatuses, [&](CandidateStatus s) { return can_transition(s, status); });
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_optional_model<PolymarketCandidate>(tx.exec_params(
        R"(UPDATE polymarket_candidates
           SET status = $2, score = COALESCE($3::real, score), updated_at = $4
           WHERE id = $1 AND status = ANY($5::text[])
           RETURNING *)",
        candidate_id, std::string(to_string(status)), score, now_iso(), from));
  });
}

std::optional<PolymarketCandidate> CandidateRepository::approve(std::int32_t candidate_id) const {
  return update_status(candidate_id, CandidateStatus::Approved);
}

std::optional<PolymarketCandidate> CandidateRepository::reject(std::int32_t candidate_id,
                                                               std::optional<double> score) const {
  return update_status(candidate_id, CandidateStatus::Rejected, score);
}

std::optional<PolymarketCandidate> CandidateRepository::mark_executed(std::int32_t candidate_id) const {
  return update_status(candidate_id, CandidateStatus::Executed);
}

std::optional<CandidateWatermark> CandidateWatermarkRepository::get(double threshold) const {
  return get_by_id(threshold);
}

std::optional<std::string> CandidateWatermarkRepository::get_last_created_at(double threshold) const {
  auto wm = get(threshold);
  if (!wm) return std::nullopt;
  return wm->last_created_at;
}

CandidateWatermark CandidateWatermarkRepository::update(double threshold, const std::string& created_at) const {
  detail::require_finite(threshold, "candidate_watermarks.threshold");
  const auto given = parse_iso(created_at);
  if (!given)
    throw std::invalid_argument("candidate_watermarks.last_created_at: '" + created_at +
                                "' is not an ISO-8601 time");
  const std::string canonical = format_iso(*given);
  return target_.run([&](pqxx::transaction_base& tx) {
    return from_row<CandidateWatermark>(tx.exec_params1(kAdvanceCandidateWatermark, threshold, canonical, now_iso()));
  });
}

}  // namespace pm

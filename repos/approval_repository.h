#pragma once
// TradeApprovalRepository: `trade_approvals` (key token_id), storage-api.md 2.12.
// - create() upserts: a new approval cycle overwrites condition_id, approved_at, approved_by,
//   max_price, expires_at and status, and clears executed_at (fix for D24: the original kept a
//   stale executed_at). status must be an ApprovalStatus text (nullopt is refused, D25);
//   approved_at (empty: now) and expires_at are stored canonical (D8/D12).
// - Expiry (D8): expires_at is compared *by time*, after parsing it with parse_iso(), never as
//   text, so rows written by other components in other ISO-8601 forms (space separator, `+00:00`,
//   no fraction) expire correctly. get_valid() treats an expires_at that does not parse as expired
//   (fail closed); expire_old() expires such rows too. NULL expires_at never expires.
// - get_valid(token, price): the pending approval whose max_price >= price (compared as float4,
//   $n::real, D7) and that has not expired; else nullopt.
// - mark_executed() / mark_expired() move only a *pending* approval (pending -> executed |
//   expired; fix for D24); otherwise (or for a missing token) nullopt and nothing changes.
//   mark_executed() does not re-check the time: call get_valid() before trading, or claim().
// - claim(token, price): get_valid() and mark_executed() as one statement, for an executor about
//   to trade: the approval becomes executed only if, as the UPDATE finds it, it is pending, not
//   expired (by the server's clock when the row is checked, after any wait for it; an expires_at
//   that does not parse counts as expired) and max_price >= price;
//   returns it executed, else nullopt. Of executors racing for one approval exactly one gets it
//   (get_valid() then mark_executed() let two both see it valid and both trade; mark_executed()
//   first consumed an expired or re-capped approval). An addition to storage-api.md's methods,
//   which it leaves as they are.
// - expire_old() reads the pending approvals that have an expires_at, and expires each one whose
//   time has passed with an UPDATE guarded by the exact expires_at text it read and status
//   'pending' (so a concurrent re-approval is never expired); returns how many it expired
//   (affected_rows, D20). Runs in one transaction.
// - get_pending() is newest first by approved_at (by time, D8: repo_support.h), token_id as
//   tie-breaker (D28).
// ApprovalAlertRepository: `approval_alerts` (key token_id), storage-api.md 2.13.
// - create() upserts condition_id, question, price, model_score and alerted_at (canonical; empty:
//   now). `approved` is sticky (fix for D24): an upsert can set it but never clears it (the
//   original reset it to false); nullopt is written as false. To ask again, remove() the alert.
// - get_pending(): approved = false, newest first by alerted_at (by time, D8: repo_support.h),
//   token_id tie-breaker (D28).
// - delete_old(days): the cut-off (now - days) is computed here, not compared as TEXT against a
//   timestamptz (fix for D9, which made every call fail); alerted_at is parsed like expires_at and
//   rows whose alerted_at does not parse are kept. Returns how many rows were deleted (D20).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "repos/repo_support.h"

namespace pm {

enum class ApprovalStatus { Pending, Executed, Expired };
std::string_view to_string(ApprovalStatus status);  // "pending", "executed", "expired"
std::optional<ApprovalStatus> parse_approval_status(std::string_view text);

class TradeApprovalRepository : public BaseRepository<TradeApproval, std::string> {
 public:
  explicit TradeApprovalRepository(DbTarget target)
      : BaseRepository(target, "trade_approvals", "token_id", "text") {}

  // Throws std::invalid_argument for an unknown status or unparseable times.
  TradeApproval create(const TradeApproval& approval) const;
  std::optional<TradeApproval> get_by_token(const std::string& token_id) const;
  std::vector<TradeApproval> get_pending() const;
  std::optional<TradeApproval> get_valid(const std::string& token_id, double price) const;
  std::optional<TradeApproval> mark_executed(const std::string& token_id) const;
  std::optional<TradeApproval> claim(const std::string& token_id, double price) const;
  std::optional<TradeApproval> mark_expired(const std::string& token_id) const;
  std::int64_t expire_old() const;
};

class ApprovalAlertRepository : public BaseRepository<ApprovalAlert, std::string> {
 public:
  explicit ApprovalAlertRepository(DbTarget target)
      : BaseRepository(target, "approval_alerts", "token_id", "text") {}

  // Throws std::invalid_argument for an unparseable alerted_at.
  ApprovalAlert create(const ApprovalAlert& alert) const;
  std::vector<ApprovalAlert> get_pending() const;
  std::optional<ApprovalAlert> approve(const std::string& token_id) const;
  // Throws std::invalid_argument for negative days.
  std::int64_t delete_old(int days = 7) const;
};

}  // namespace pm

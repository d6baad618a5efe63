#include "repos/approval_repository.h"

#include <chrono>

#include "repos/util/clock.h"

namespace pm {

namespace {

constexpr std::array<EnumText<ApprovalStatus>, 3> kApprovalStatuses{{
    {ApprovalStatus::Pending, "pending"},
    {ApprovalStatus::Executed, "executed"},
    {ApprovalStatus::Expired, "expired"},
}};

// True when `expires_at` is at or before `now`, or does not parse (fail closed).
bool has_expired(const std::string& expires_at, SystemTime now) {
  auto t = parse_iso(expires_at);
  return !t || *t <= now;
}

}  // namespace

std::string_view to_string(ApprovalStatus status) { return enum_text(status, kApprovalStatuses); }
std::optional<ApprovalStatus> parse_approval_status(std::string_view text) {
  return parse_enum(text, kApprovalStatuses);
}

// ---- TradeApprovalRepository ----

TradeApproval TradeApprovalRepository::create(const TradeApproval& a) const {
  if (!a.status) throw std::invalid_argument("trade_approvals.status must be given");
  detail::require_enum(*a.status, kApprovalStatuses, "trade_approvals.status");
  const std::string approved_at = detail::write_iso_or_now(a.approved_at, "trade_approvals.approved_at");
  const auto expires_at = detail::write_iso(a.expires_at, "trade_approvals.expires_at");
  detail::require_finite(a.max_price, "trade_approvals.max_price");
  return target_.run([&](pqxx::transaction_base& tx) {
    return from_row<TradeApproval>(tx.exec_params1(
        R"(INSERT INTO trade_approvals
             (token_id, condition_id, approved_at, approved_by, max_price, expires_at, status)
           VALUES ($1, $2, $3, $4, $5::real, $6, $7)
           ON CONFLICT (token_id) DO UPDATE
             SET condition_id = EXCLUDED.condition_id, approved_at = EXCLUDED.approved_at,
                 approved_by = EXCLUDED.approved_by, max_price = EXCLUDED.max_price,
                 expires_at = EXCLUDED.expires_at, status = EXCLUDED.status, executed_at = NULL
           RETURNING *)",
        a.token_id, a.condition_id, approved_at, a.approved_by, a.max_price, expires_at, a.status));
  });
}

std::optional<TradeApproval> TradeApprovalRepository::get_by_token(const std::string& token_id) const {
  return get_by_id(token_id);
}

std::vector<TradeApproval> TradeApprovalRepository::get_pending() const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<TradeApproval>(tx.exec(
        R"(SELECT * FROM trade_approvals WHERE status = 'pending'
           ORDER BY pm_text_time(approved_at) DESC NULLS LAST, approved_at DESC, token_id)"));
  });
}

std::optional<TradeApproval> TradeApprovalRepository::get_valid(const std::string& token_id, double price) const {
  auto found = target_.run([&](pqxx::transaction_base& tx) {
    return to_optional_model<TradeApproval>(tx.exec_params(
        R"(SELECT * FROM trade_approvals
           WHERE token_id = $1 AND status = 'pending' AND max_price >= $2::real)",
        token_id, price));
  });
  if (found && found->expires_at && has_expired(*found->expires_at, std::chrono::system_clock::now()))
    return std::nullopt;
  return found;
}

std::optional<TradeApproval> TradeApprovalRepository::mark_executed(const std::string& token_id) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_optional_model<TradeApproval>(tx.exec_params(
        R"(UPDATE trade_approvals SET status = 'executed', executed_at = $2
           WHERE token_id = $1 AND status = 'pending' RETURNING *)",
        token_id, now_iso()));
  });
}

// One statement: every condition of get_valid() is checked on the row as it is when the UPDATE
// takes it (a racing claim waits for the row and then finds it executed, or re-checks a row changed
// meanwhile). The expiry by time as get_valid() reads it (pm_text_time parses the same ISO-8601
// forms; one it cannot parse is NULL: not claimed, fail closed), against clock_timestamp(): the
// server's time when the row is checked, not now(), which is the start of the (caller's)
// transaction, before any wait for the row.
std::optional<TradeApproval> TradeApprovalRepository::claim(const std::string& token_id, double price) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_optional_model<TradeApproval>(tx.exec_params(
        R"(UPDATE trade_approvals SET status = 'executed', executed_at = $3
           WHERE token_id = $1 AND status = 'pending' AND max_price >= $2::real
             AND (expires_at IS NULL OR pm_text_time(expires_at) > clock_timestamp())
           RETURNING *)",
        token_id, price, now_iso()));
  });
}

std::optional<TradeApproval> TradeApprovalRepository::mark_expired(const std::string& token_id) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_optional_model<TradeApproval>(tx.exec_params(
        R"(UPDATE trade_approvals SET status = 'expired'
           WHERE token_id = $1 AND status = 'pending' RETURNING *)",
        token_id));
  });
}

std::int64_t TradeApprovalRepository::expire_old() const {
  return target_.run([&](pqxx::transaction_base& tx) {
    const SystemTime now = std::chrono::system_clock::now();
    std::int64_t expired = 0;
    const auto rows = tx.exec(
        R"(SELECT token_id, expires_at FROM trade_approvals
           WHERE status = 'pending' AND expires_at IS NOT NULL ORDER BY token_id)");
    for (const auto& row : rows) {
      const auto expires_at = row[1].as<std::string>();
      if (!has_expired(expires_at, now)) continue;
      expired += tx.exec_params(
                       R"(UPDATE trade_approvals SET status = 'expired'
                          WHERE token_id = $1 AND status = 'pending' AND expires_at = $2)",
                       row[0].as<std::string>(), expires_at)
                     .affected_rows();
    }
    return expired;
  });
}

// ---- ApprovalAlertRepository ----

ApprovalAlert ApprovalAlertRepository::create(const ApprovalAlert& a) const {
  const std::string alerted_at = detail::write_iso_or_now(a.alerted_at, "approval_alerts.alerted_at");
  detail::require_finite(a.price, "approval_alerts.price");
  detail::require_finite(a.model_score, "approval_alerts.model_score");
  return target_.run([&](pqxx::transaction_base& tx) {
    return from_row<ApprovalAlert>(tx.exec_params1(
        R"(INSERT INTO approval_alerts
             (token_id, condition_id, question, price, model_score, alerted_at, approved)
           VALUES ($1, $2, $3, $4::real, $5::real, $6, COALESCE($7::boolean, false))
           ON CONFLICT (token_id) DO UPDATE
             SET condition_id = EXCLUDED.condition_id, question = EXCLUDED.question,
                 price = EXCLUDED.price, model_score = EXCLUDED.model_score,
                 alerted_at = EXCLUDED.alerted_at,
                 approved = (approval_alerts.approved IS TRUE) OR EXCLUDED.approved
           RETURNING *)",
        a.token_id, a.condition_id, a.question, a.price, a.model_score, alerted_at, a.approved));
  });
}

std::vector<ApprovalAlert> ApprovalAlertRepository::get_pending() const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<ApprovalAlert>(tx.exec(
        R"(SELECT * FROM approval_alerts WHERE approved = FALSE
           ORDER BY pm_text_time(alerted_at) DESC NULLS LAST, alerted_at DESC, token_id)"));
  });
}

std::optional<ApprovalAlert> ApprovalAlertRepository::approve(const std::string& token_id) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_optional_model<ApprovalAlert>(tx.exec_params(
        "UPDATE approval_alerts SET approved = TRUE WHERE token_id = $1 RETURNING *", token_id));
  });
}

std::int64_t ApprovalAlertRepository::delete_old(int days) const {
  if (days < 0) throw std::invalid_argument("days must not be negative");
  return target_.run([&](pqxx::transaction_base& tx) {
    // In milliseconds: days * 86,400,000 fits an int64 for every int, where the clock's own
    // nanoseconds overflow past ~292 years and wrapped into a cut-off in the future.
    const auto ms = [](SystemTime t) { return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count(); };
    const std::int64_t cutoff_ms = ms(std::chrono::system_clock::now()) - std::int64_t{days} * 86'400'000;
    std::int64_t deleted = 0;
    const auto rows = tx.exec("SELECT token_id, alerted_at FROM approval_alerts ORDER BY token_id");
    for (const auto& row : rows) {
      const auto alerted_at = row[1].as<std::string>();
      const auto t = parse_iso(alerted_at);
      if (!t || ms(*t) >= cutoff_ms) continue;
      deleted += tx.exec_params("DELETE FROM approval_alerts WHERE token_id = $1 AND alerted_at = $2",
                                row[0].as<std::string>(), alerted_at)
                     .affected_rows();
    }
    return deleted;
  });
}

}  // namespace pm

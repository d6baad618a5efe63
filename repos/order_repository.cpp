#include "repos/order_repository.h"

#include "repos/timestamp_unit.h"
#include "repos/util/clock.h"

namespace pm {

namespace {

constexpr std::array<EnumText<LiveOrderStatus>, 5> kLiveOrderStatuses{{
    {LiveOrderStatus::Submitted, "submitted"},
    {LiveOrderStatus::Partial, "partial"},
    {LiveOrderStatus::Filled, "filled"},
    {LiveOrderStatus::Cancelled, "cancelled"},
    {LiveOrderStatus::Rejected, "rejected"},
}};

// D30: candidate_id names a polymarket_candidates row (no foreign key in the schema).
void require_candidate_id(std::int32_t candidate_id, const char* column) {
  if (candidate_id <= 0)
    throw std::invalid_argument(std::string(column) + ": " + std::to_string(candidate_id) + " is not a candidate id");
}

// The row an INSERT .. WHERE EXISTS (candidate) returned; none means no such candidate.
pqxx::row row_naming_a_candidate(const pqxx::result& inserted, std::int32_t candidate_id, const char* column) {
  if (inserted.empty())
    throw std::invalid_argument(std::string(column) + ": no candidate with id " + std::to_string(candidate_id));
  return inserted[0];
}

}  // namespace

PaperTrade PaperTradeRepository::create(const PaperTrade& t) const {
  if (t.decision.empty()) throw std::invalid_argument("paper_trades.decision must not be empty");
  const std::string created_at = detail::write_iso_or_now(t.created_at, "paper_trades.created_at");
  require_candidate_id(t.candidate_id, "paper_trades.candidate_id");
  detail::require_finite(t.threshold, "paper_trades.threshold");
  detail::require_finite(t.candidate_price, "paper_trades.candidate_price");
  detail::require_finite(t.fill_price, "paper_trades.fill_price");
  detail::require_finite(t.size, "paper_trades.size");
  detail::require_finite(t.model_score, "paper_trades.model_score");
  if (t.trigger_timestamp)
    require_timestamp(*t.trigger_timestamp, TimestampUnit::Milliseconds,
                      newest_accepted(FutureBound::FromNow, TimestampUnit::Milliseconds),
                      "paper_trades.trigger_timestamp of token '" + t.token_id + "'", kTriggerUnitSource);
  return target_.run([&](pqxx::transaction_base& tx) {
    return from_row<PaperTrade>(row_naming_a_candidate(tx.exec_params(
        R"(INSERT INTO paper_trades
             (candidate_id, token_id, condition_id, threshold, trigger_timestamp, candidate_price,
              fill_price, size, model_score, model_version, decision, reason, created_at,
              description, outcome, outcome_index)
           SELECT $1, $2, $3, $4::real, $5, $6::real, $7::real, $8::real, $9::real, $10, $11, $12,
                  $13, $14, $15, $16
           WHERE EXISTS (SELECT 1 FROM polymarket_candidates WHERE id = $1)
           RETURNING *)",
        t.candidate_id, t.token_id, t.condition_id, t.threshold, t.trigger_timestamp, t.candidate_price,
        t.fill_price, t.size, t.model_score, t.model_version, t.decision, t.reason, created_at,
        t.description, t.outcome, t.outcome_index), t.candidate_id, "paper_trades.candidate_id"));
  });
}

std::optional<PaperTrade> PaperTradeRepository::get_by_candidate(std::int32_t candidate_id) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_optional_model<PaperTrade>(tx.exec_params(
        "SELECT * FROM paper_trades WHERE candidate_id = $1 ORDER BY id DESC LIMIT 1", candidate_id));
  });
}

std::vector<PaperTrade> PaperTradeRepository::get_recent(int limit) const {
  detail::check_limit(limit);
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<PaperTrade>(
        tx.exec_params(R"(SELECT * FROM paper_trades
                          ORDER BY pm_text_time(created_at) DESC NULLS LAST, created_at DESC, id DESC LIMIT $1)",
                       limit));
  });
}

std::vector<PaperTrade> PaperTradeRepository::get_by_decision(const std::string& decision, int limit) const {
  detail::check_limit(limit);
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<PaperTrade>(tx.exec_params(
        R"(SELECT * FROM paper_trades WHERE decision = $1
           ORDER BY pm_text_time(created_at) DESC NULLS LAST, created_at DESC, id DESC LIMIT $2)",
        decision, limit));
  });
}

std::string_view to_string(LiveOrderStatus status) { return enum_text(status, kLiveOrderStatuses); }

std::optional<LiveOrderStatus> parse_live_order_status(std::string_view text) {
  return parse_enum(text, kLiveOrderStatuses);
}

bool can_transition(LiveOrderStatus from, LiveOrderStatus to) {
  using S = LiveOrderStatus;
  switch (from) {
    case S::Submitted: return to != S::Submitted;
    case S::Partial: return to == S::Partial || to == S::Filled || to == S::Cancelled;
    case S::Cancelled: return to == S::Partial || to == S::Filled;  // a late fill report
    case S::Filled:
    case S::Rejected: return false;
  }
  return false;
}

LiveOrder LiveOrderRepository::create(const LiveOrder& o) const {
  detail::require_enum(o.status, kLiveOrderStatuses, "live_orders.status");
  const std::string submitted_at = detail::write_iso_or_now(o.submitted_at, "live_orders.submitted_at");
  require_candidate_id(o.candidate_id, "live_orders.candidate_id");
  detail::require_finite(o.threshold, "live_orders.threshold");
  detail::require_finite(o.order_price, "live_orders.order_price");
  detail::require_finite(o.order_size, "live_orders.order_size");
  return target_.run([&](pqxx::transaction_base& tx) {
    return from_row<LiveOrder>(row_naming_a_candidate(tx.exec_params(
        R"(INSERT INTO live_orders
             (order_id, candidate_id, token_id, condition_id, threshold, order_price, order_size,
              status, reason, submitted_at)
           SELECT $1, $2, $3, $4, $5::real, $6::real, $7::real, $8, $9, $10
           WHERE EXISTS (SELECT 1 FROM polymarket_candidates WHERE id = $2)
           RETURNING *)",
        o.order_id, o.candidate_id, o.token_id, o.condition_id, o.threshold, o.order_price, o.order_size,
        o.status, o.reason, submitted_at), o.candidate_id, "live_orders.candidate_id"));
  });
}

std::optional<LiveOrder> LiveOrderRepository::get_by_order_id(const std::string& order_id) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_optional_model<LiveOrder>(
        tx.exec_params("SELECT * FROM live_orders WHERE order_id = $1", order_id));
  });
}

std::vector<LiveOrder> LiveOrderRepository::get_active() const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<LiveOrder>(tx.exec(
        R"(SELECT * FROM live_orders WHERE status IN ('submitted', 'partial')
           ORDER BY pm_text_time(submitted_at) DESC NULLS LAST, submitted_at DESC, id DESC)"));
  });
}

std::vector<LiveOrder> LiveOrderRepository::get_by_status(LiveOrderStatus status, int limit) const {
  detail::check_limit(limit);
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<LiveOrder>(tx.exec_params(
        R"(SELECT * FROM live_orders WHERE status = $1
           ORDER BY pm_text_time(submitted_at) DESC NULLS LAST, submitted_at DESC, id DESC LIMIT $2)",
        std::string(to_string(status)), limit));
  });
}

std::vector<LiveOrder> LiveOrderRepository::get_by_token(const std::string& token_id) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<LiveOrder>(tx.exec_params(
        R"(SELECT * FROM live_orders WHERE token_id = $1
           ORDER BY pm_text_time(submitted_at) DESC NULLS LAST, submitted_at DESC, id DESC)", token_id));
  });
}

std::optional<LiveOrder> LiveOrderRepository::update_status(const std::string& order_id,
                                                            LiveOrderStatus status,
                                                            std::optional<double> fill_price,
                                                            std::optional<double> fill_size,
                                                            std::optional<std::string> reason) const {
  detail::require_finite(fill_price, "live_orders.fill_price");
  detail::require_finite(fill_size, "live_orders.fill_size");
  const std::string from = detail::text_array(
      kLiveOrderStatuses, [&](LiveOrderStatus s) { return can_transition(s, status); });
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_optional_model<LiveOrder>(tx.exec_params(
        R"(UPDATE live_orders
           SET status = CASE WHEN status = 'cancelled' AND $2::text = 'partial' THEN status ELSE $2::text END,
               fill_price = CASE WHEN $4::real < fill_size THEN fill_price ELSE COALESCE($3::real, fill_price) END,
               fill_size = GREATEST(fill_size, $4::real),
               reason = CASE WHEN status = 'cancelled' AND $2::text = 'filled' THEN $5::text
                             ELSE COALESCE($5::text, reason) END,
               filled_at = CASE WHEN $2::text = 'filled' THEN $6 ELSE filled_at END,
               updated_at = $6
           WHERE order_id = $1 AND status = ANY($7::text[])
           RETURNING *)",
        order_id, std::string(to_string(status)), fill_price, fill_size, reason, now_iso(), from));
  });
}

std::optional<LiveOrder> LiveOrderRepository::mark_filled(const std::string& order_id, double fill_price,
                                                          double fill_size) const {
  return update_status(order_id, LiveOrderStatus::Filled, fill_price, fill_size);
}

std::optional<LiveOrder> LiveOrderRepository::mark_cancelled(const std::string& order_id,
                                                             std::optional<std::string> reason) const {
  return update_status(order_id, LiveOrderStatus::Cancelled, std::nullopt, std::nullopt, std::move(reason));
}

std::optional<LiveOrder> LiveOrderRepository::mark_rejected(const std::string& order_id,
                                                            const std::string& reason) const {
  return update_status(order_id, LiveOrderStatus::Rejected, std::nullopt, std::nullopt, reason);
}

}  // namespace pm

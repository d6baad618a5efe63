#include "repos/position_repository.h"

#include <charconv>

#include "repos/util/clock.h"

namespace pm {

namespace {

constexpr std::array<EnumText<PositionStatus>, 3> kPositionStatuses{{
    {PositionStatus::Open, "open"},
    {PositionStatus::Closed, "closed"},
    {PositionStatus::Resolved, "resolved"},
}};

constexpr std::array<EnumText<PositionSide>, 2> kPositionSides{{
    {PositionSide::Buy, "BUY"},
    {PositionSide::Sell, "SELL"},
}};

constexpr std::array<EnumText<ExitType>, 4> kExitTypes{{
    {ExitType::StopLoss, "stop_loss"},
    {ExitType::TakeProfit, "take_profit"},
    {ExitType::Manual, "manual"},
    {ExitType::Resolution, "resolution"},
}};

constexpr std::array<EnumText<ExitEventStatus>, 3> kExitEventStatuses{{
    {ExitEventStatus::Pending, "pending"},
    {ExitEventStatus::Executed, "executed"},
    {ExitEventStatus::Failed, "failed"},
}};

// exit_events.position_id as the integer id it names; nullopt unless plain decimal digits.
std::optional<std::int32_t> parse_position_id(const std::string& text) {
  std::int32_t value = 0;
  if (text.empty() || text.front() < '0' || text.front() > '9') return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

void require_day(const std::string& date) {
  bool shape = date.size() == 10 && date[4] == '-' && date[7] == '-';
  for (std::size_t i = 0; shape && i < date.size(); ++i)
    if (i != 4 && i != 7 && (date[i] < '0' || date[i] > '9')) shape = false;
  if (!shape || !parse_iso(date + "T00:00:00Z"))  // a real calendar day
    throw std::invalid_argument("daily_pnl.date: '" + date + "' is not YYYY-MM-DD");
}

}  // namespace

std::string_view to_string(PositionStatus status) { return enum_text(status, kPositionStatuses); }
std::optional<PositionStatus> parse_position_status(std::string_view text) {
  return parse_enum(text, kPositionStatuses);
}
std::string_view to_string(PositionSide side) { return enum_text(side, kPositionSides); }
std::optional<PositionSide> parse_position_side(std::string_view text) { return parse_enum(text, kPositionSides); }
std::string_view to_string(ExitType type) { return enum_text(type, kExitTypes); }
std::optional<ExitType> parse_exit_type(std::string_view text) { return parse_enum(text, kExitTypes); }
std::string_view to_string(ExitEventStatus status) { return enum_text(status, kExitEventStatuses); }
std::optional<ExitEventStatus> parse_exit_event_status(std::string_view text) {
  return parse_enum(text, kExitEventStatuses);
}

// ---- PositionRepository ----

Position PositionRepository::create(const Position& p) const {
  detail::require_enum(p.status, kPositionStatuses, "positions.status");
  detail::require_enum(p.side, kPositionSides, "positions.side");
  const std::string now = now_iso();
  const std::string entry_timestamp =
      p.entry_timestamp.empty() ? now : detail::write_iso_or_now(p.entry_timestamp, "positions.entry_timestamp");
  const std::string created_at =
      p.created_at.empty() ? now : detail::write_iso_or_now(p.created_at, "positions.created_at");
  detail::require_finite(p.size, "positions.size");
  detail::require_finite(p.entry_price, "positions.entry_price");
  detail::require_finite(p.entry_cost, "positions.entry_cost");
  detail::require_finite(p.current_price, "positions.current_price");
  detail::require_finite(p.current_value, "positions.current_value");
  detail::require_finite(p.unrealized_pnl, "positions.unrealized_pnl");
  detail::require_finite(p.realized_pnl, "positions.realized_pnl");
  return target_.run([&](pqxx::transaction_base& tx) {
    return from_row<Position>(tx.exec_params1(
        R"(INSERT INTO positions
             (token_id, condition_id, market_id, outcome, outcome_index, side, size, entry_price,
              entry_cost, current_price, current_value, unrealized_pnl, realized_pnl, status,
              entry_order_id, entry_timestamp, description, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7::real, $8::real, $9::real, $10::real, $11::real,
                   $12::real, $13::real, $14, $15, $16, $17, $18)
           RETURNING *)",
        p.token_id, p.condition_id, p.market_id, p.outcome, p.outcome_index, p.side, p.size,
        p.entry_price, p.entry_cost, p.current_price, p.current_value, p.unrealized_pnl, p.realized_pnl,
        p.status, p.entry_order_id, entry_timestamp, p.description, created_at));
  });
}

std::vector<Position> PositionRepository::get_open() const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<Position>(
        tx.exec(R"(SELECT * FROM positions WHERE status = 'open'
                   ORDER BY pm_text_time(created_at) DESC NULLS LAST, created_at DESC, id DESC)"));
  });
}

std::vector<Position> PositionRepository::get_by_status(PositionStatus status, int limit) const {
  detail::check_limit(limit);
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<Position>(tx.exec_params(
        R"(SELECT * FROM positions WHERE status = $1
           ORDER BY pm_text_time(created_at) DESC NULLS LAST, created_at DESC, id DESC LIMIT $2)",
        std::string(to_string(status)), limit));
  });
}

std::vector<Position> PositionRepository::get_by_token(const std::string& token_id) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<Position>(tx.exec_params(
        R"(SELECT * FROM positions WHERE token_id = $1
           ORDER BY pm_text_time(created_at) DESC NULLS LAST, created_at DESC, id DESC)", token_id));
  });
}

std::optional<Position> PositionRepository::get_open_by_token(const std::string& token_id) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_optional_model<Position>(tx.exec_params(
        "SELECT * FROM positions WHERE token_id = $1 AND status = 'open' ORDER BY id DESC LIMIT 1",
        token_id));
  });
}

std::optional<Position> PositionRepository::update_price(std::int32_t position_id, double current_price) const {
  detail::require_finite(current_price, "positions.current_price");
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_optional_model<Position>(tx.exec_params(
        R"(UPDATE positions
           SET current_price = $2::real,
               current_value = size * $2::real,
               unrealized_pnl = size * $2::real - entry_cost,
               updated_at = $3
           WHERE id = $1 AND status = 'open'
           RETURNING *)",
        position_id, current_price, now_iso()));
  });
}

std::optional<Position> PositionRepository::close(std::int32_t position_id, double exit_price,
                                                  std::optional<std::string> exit_order_id,
                                                  std::optional<double> realized_pnl) const {
  detail::require_finite(exit_price, "positions.current_price (exit price)");
  detail::require_finite(realized_pnl, "positions.realized_pnl");
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_optional_model<Position>(tx.exec_params(
        R"(UPDATE positions
           SET status = 'closed',
               current_price = $2::real,
               current_value = size * $2::real,
               realized_pnl = COALESCE($4::real, size * $2::real - entry_cost),
               unrealized_pnl = 0,
               exit_order_id = $3::text,
               exit_status = CASE WHEN $3::text IS NULL THEN NULL ELSE 'filled' END,
               exit_pending = FALSE,
               exit_timestamp = $5,
               updated_at = $5
           WHERE id = $1 AND status = 'open'
           RETURNING *)",
        position_id, exit_price, exit_order_id, realized_pnl, now_iso()));
  });
}

std::optional<Position> PositionRepository::resolve(std::int32_t position_id, const std::string& resolution,
                                                    double final_value) const {
  detail::require_finite(final_value, "positions.current_value (final value)");
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_optional_model<Position>(tx.exec_params(
        R"(UPDATE positions
           SET status = 'resolved',
               resolution = $2,
               current_value = $3::real,
               realized_pnl = $3::real - entry_cost,
               unrealized_pnl = 0,
               exit_pending = FALSE,
               exit_order_id = NULL,
               exit_status = 'resolved',
               resolved_at = $4,
               updated_at = $4
           WHERE id = $1 AND status = 'open'
           RETURNING *)",
        position_id, resolution, final_value, now_iso()));
  });
}

double PositionRepository::get_total_exposure() const {
  return target_.run([&](pqxx::transaction_base& tx) {
    // Widened before adding: SUM over REAL adds in float4 (1,000 x 75.37 came to 75369.945).
    return tx.exec1("SELECT COALESCE(SUM(entry_cost::float8), 0) FROM positions WHERE status = 'open'")[0].as<double>();
  });
}

// ---- ExitEventRepository ----

ExitEvent ExitEventRepository::create(const ExitEvent& e) const {
  detail::require_enum(e.exit_type, kExitTypes, "exit_events.exit_type");
  detail::require_enum(e.status, kExitEventStatuses, "exit_events.status");
  const auto position = parse_position_id(e.position_id);
  if (!position)
    throw std::invalid_argument("exit_events.position_id: '" + e.position_id + "' is not a position id");
  const std::string created_at = detail::write_iso_or_now(e.created_at, "exit_events.created_at");
  detail::require_finite({{e.entry_price, "exit_events.entry_price"}, {e.exit_price, "exit_events.exit_price"},
                          {e.size, "exit_events.size"}, {e.gross_pnl, "exit_events.gross_pnl"},
                          {e.net_pnl, "exit_events.net_pnl"}, {e.hours_held, "exit_events.hours_held"}});
  return target_.run([&](pqxx::transaction_base& tx) {
    auto inserted = tx.exec_params(
        R"(INSERT INTO exit_events
             (position_id, token_id, condition_id, exit_type, entry_price, exit_price, size, gross_pnl,
              net_pnl, hours_held, exit_order_id, status, reason, created_at)
           SELECT $1, $2, $3, $4, $5::real, $6::real, $7::real, $8::real, $9::real, $10::real, $11,
                  $12, $13, $14
           WHERE EXISTS (SELECT 1 FROM positions WHERE id = $15)
           RETURNING *)",
        std::to_string(*position), e.token_id, e.condition_id, e.exit_type, e.entry_price, e.exit_price,
        e.size, e.gross_pnl, e.net_pnl, e.hours_held, e.exit_order_id, e.status, e.reason, created_at,
        *position);
    if (inserted.empty())
      throw std::invalid_argument("exit_events.position_id: no position with id " + e.position_id);
    return from_row<ExitEvent>(inserted[0]);
  });
}

std::vector<ExitEvent> ExitEventRepository::get_pending() const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<ExitEvent>(
        tx.exec(R"(SELECT * FROM exit_events WHERE status = 'pending'
                   ORDER BY pm_text_time(created_at) ASC NULLS LAST, created_at ASC, id ASC)"));
  });
}

std::vector<ExitEvent> ExitEventRepository::get_by_position(const std::string& position_id) const {
  // create() stores the id as a number ("007" as "7"): the same text finds what it created. Rows
  // written by others keep the text they were given, so that text is looked for too.
  const auto position = parse_position_id(position_id);
  const std::string stored = position ? std::to_string(*position) : position_id;
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<ExitEvent>(tx.exec_params(
        R"(SELECT * FROM exit_events WHERE position_id IN ($1, $2)
           ORDER BY pm_text_time(created_at) DESC NULLS LAST, created_at DESC, id DESC)", stored, position_id));
  });
}

std::vector<ExitEvent> ExitEventRepository::get_by_position(std::int32_t position_id) const {
  return get_by_position(std::to_string(position_id));
}

std::optional<ExitEvent> ExitEventRepository::mark_executed(std::int32_t event_id) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_optional_model<ExitEvent>(tx.exec_params(
        R"(UPDATE exit_events SET status = 'executed', executed_at = $2
           WHERE id = $1 AND status = 'pending' RETURNING *)",
        event_id, now_iso()));
  });
}

std::optional<ExitEvent> ExitEventRepository::mark_failed(std::int32_t event_id, const std::string& reason) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_optional_model<ExitEvent>(tx.exec_params(
        R"(UPDATE exit_events SET status = 'failed', reason = $2
           WHERE id = $1 AND status = 'pending' RETURNING *)",
        event_id, reason));
  });
}

// ---- DailyPnlRepository ----

DailyPnl DailyPnlRepository::get_or_create(const std::string& date) const {
  require_day(date);
  return target_.run([&](pqxx::transaction_base& tx) {
    const char* const select = "SELECT * FROM daily_pnl WHERE date = $1";
    auto found = tx.exec_params(select, date);
    if (!found.empty()) return from_row<DailyPnl>(found[0]);
    auto inserted = tx.exec_params(
        "INSERT INTO daily_pnl (date) VALUES ($1) ON CONFLICT (date) DO NOTHING RETURNING *", date);
    if (!inserted.empty()) return from_row<DailyPnl>(inserted[0]);
    return from_row<DailyPnl>(tx.exec_params1(select, date));  // a concurrent caller created it
  });
}

DailyPnl DailyPnlRepository::update(const std::string& date, double realized_pnl, double unrealized_pnl,
                                    std::int32_t num_trades, std::int32_t num_wins,
                                    std::int32_t num_losses) const {
  require_day(date);
  detail::require_finite(realized_pnl, "daily_pnl.realized_pnl");
  detail::require_finite(unrealized_pnl, "daily_pnl.unrealized_pnl");
  return target_.run([&](pqxx::transaction_base& tx) {
    return from_row<DailyPnl>(tx.exec_params1(
        R"(INSERT INTO daily_pnl
             (date, realized_pnl, unrealized_pnl, total_pnl, num_trades, num_wins, num_losses, updated_at)
           VALUES ($1, $2::real, $3::real, $2::real + $3::real, $4, $5, $6, $7)
           ON CONFLICT (date) DO UPDATE
             SET realized_pnl = EXCLUDED.realized_pnl, unrealized_pnl = EXCLUDED.unrealized_pnl,
                 total_pnl = EXCLUDED.total_pnl, num_trades = EXCLUDED.num_trades,
                 num_wins = EXCLUDED.num_wins, num_losses = EXCLUDED.num_losses,
                 updated_at = EXCLUDED.updated_at
           RETURNING *)",
        date, realized_pnl, unrealized_pnl, num_trades, num_wins, num_losses, now_iso()));
  });
}

std::vector<DailyPnl> DailyPnlRepository::get_recent(int days) const {
  detail::check_limit(days);
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<DailyPnl>(tx.exec_params("SELECT * FROM daily_pnl ORDER BY date DESC LIMIT $1", days));
  });
}

double DailyPnlRepository::get_total_realized() const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return tx.exec1("SELECT COALESCE(SUM(realized_pnl::float8), 0) FROM daily_pnl")[0].as<double>();  // as above
  });
}

}  // namespace pm

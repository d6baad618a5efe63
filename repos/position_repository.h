#pragma once
// PositionRepository: `positions` (key id SERIAL; UNIQUE (token_id, entry_timestamp)), storage-api.md 2.9.
// - create() writes the columns the original writes (resolution, exit_*, resolved_at, updated_at of
//   the input are ignored; exit_pending takes the DB default FALSE) and returns the row with its
//   id. status and side must be PositionStatus / PositionSide texts (D25); entry_timestamp and
//   created_at are stored canonical (empty: now, the same instant for both; D8/D12). The same
//   token and entry_timestamp again throws pqxx::unique_violation. Never re-run after COMMIT (D13).
// - update_price(), close() and resolve() act only on an *open* position (fix for D22): on a
//   closed or resolved one (or a missing id) they return nullopt and change nothing. The guard is
//   in the UPDATE's WHERE, so two concurrent closes cannot both win. Arithmetic is the original's,
//   done by the server in float4 (size 100, cost 75: price 0.85 -> value 85, unrealized 10).
//   close(): realized_pnl = the given value, else size * exit_price - entry_cost; exit_order_id is
//   set to the given value (nullopt writes NULL, as in the original) and exit_status is 'filled'
//   when one was given, else NULL. resolve(): realized = final_value - entry_cost; current_price and
//   exit_timestamp untouched.
// - get_open_by_token() returns the newest open position of the token (highest id): the original
//   took an arbitrary one (fix for D21; the schema does not forbid several open positions).
// - Lists are newest first by created_at (by time, D8: repo_support.h), id DESC as tie-breaker
//   (D28). get_total_exposure() is SUM(entry_cost) over open positions (0 when none), each REAL
//   widened to float8 before adding: a SUM over REAL adds in float4, which drifts (D6: 1,000
//   positions of 75.37 summed to 75369.945).
// ExitEventRepository: `exit_events` (key id SERIAL), storage-api.md 2.10.
// - create(): exit_type and status must be ExitType / ExitEventStatus texts (D25); created_at is
//   canonical (empty: now); executed_at of the input is ignored. position_id is TEXT in the schema
//   while positions.id is an integer and there is no foreign key (D30): create() requires the
//   decimal id of an existing position and throws std::invalid_argument otherwise (it is stored
//   as that id's plain decimal text, so "007" is stored as "7").
// - mark_executed() / mark_failed() move only a *pending* event (pending -> executed | failed);
//   otherwise (or for a missing id) nullopt and nothing changes.
// - get_by_position(text) finds the events of that text as create() stores it ("007": "7") and as
//   given (another writer's own text). get_by_position(7) is get_by_position("7"): an event
//   another writer stored as "007" is found only by that text.
// - get_pending() oldest first (created_at, id); get_by_position() newest first (created_at, id
//   DESC); created_at (by time, D8: repo_support.h).
// DailyPnlRepository: `daily_pnl` (key date TEXT `YYYY-MM-DD`, validated: std::invalid_argument).
// - get_or_create() reads first and inserts (ON CONFLICT DO NOTHING) only when the day is missing,
//   so reading an existing day never writes or locks (fix for D26). A new day has the DB defaults.
// - update() overwrites the day (it does not add); total_pnl = realized + unrealized (float4).
// - get_total_realized() is SUM(realized_pnl) over every day (0 when none), added in float8 as
//   get_total_exposure() is.
// - get_recent(days) returns the newest `days` *rows* by date, not the last `days` calendar days
//   (the original's semantics, documented per D26).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "repos/repo_support.h"

namespace pm {

enum class PositionStatus { Open, Closed, Resolved };
std::string_view to_string(PositionStatus status);  // "open", "closed", "resolved"
std::optional<PositionStatus> parse_position_status(std::string_view text);

enum class PositionSide { Buy, Sell };
std::string_view to_string(PositionSide side);  // "BUY", "SELL"
std::optional<PositionSide> parse_position_side(std::string_view text);

class PositionRepository : public BaseRepository<Position, std::int32_t> {
 public:
  explicit PositionRepository(DbTarget target) : BaseRepository(target, "positions", "id", "integer") {}

  // Throws std::invalid_argument for an unknown status/side or unparseable times.
  Position create(const Position& position) const;
  std::vector<Position> get_open() const;  // no limit
  std::vector<Position> get_by_status(PositionStatus status, int limit = 100) const;
  std::vector<Position> get_by_token(const std::string& token_id) const;  // no limit
  std::optional<Position> get_open_by_token(const std::string& token_id) const;

  std::optional<Position> update_price(std::int32_t position_id, double current_price) const;
  std::optional<Position> close(std::int32_t position_id, double exit_price,
                                std::optional<std::string> exit_order_id = std::nullopt,
                                std::optional<double> realized_pnl = std::nullopt) const;
  std::optional<Position> resolve(std::int32_t position_id, const std::string& resolution,
                                  double final_value) const;
  double get_total_exposure() const;
};

enum class ExitType { StopLoss, TakeProfit, Manual, Resolution };
std::string_view to_string(ExitType type);  // "stop_loss", "take_profit", "manual", "resolution"
std::optional<ExitType> parse_exit_type(std::string_view text);

enum class ExitEventStatus { Pending, Executed, Failed };
std::string_view to_string(ExitEventStatus status);  // "pending", "executed", "failed"
std::optional<ExitEventStatus> parse_exit_event_status(std::string_view text);

class ExitEventRepository : public BaseRepository<ExitEvent, std::int32_t> {
 public:
  explicit ExitEventRepository(DbTarget target) : BaseRepository(target, "exit_events", "id", "integer") {}

  ExitEvent create(const ExitEvent& event) const;
  std::vector<ExitEvent> get_pending() const;
  std::vector<ExitEvent> get_by_position(const std::string& position_id) const;
  std::vector<ExitEvent> get_by_position(std::int32_t position_id) const;
  std::optional<ExitEvent> mark_executed(std::int32_t event_id) const;
  std::optional<ExitEvent> mark_failed(std::int32_t event_id, const std::string& reason) const;
};

class DailyPnlRepository : public BaseRepository<DailyPnl, std::string> {
 public:
  explicit DailyPnlRepository(DbTarget target) : BaseRepository(target, "daily_pnl", "date", "text") {}

  DailyPnl get_or_create(const std::string& date) const;
  DailyPnl update(const std::string& date, double realized_pnl, double unrealized_pnl,
                  std::int32_t num_trades, std::int32_t num_wins, std::int32_t num_losses) const;
  std::vector<DailyPnl> get_recent(int days = 30) const;
  double get_total_realized() const;
};

}  // namespace pm

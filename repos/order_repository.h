#pragma once
// PaperTradeRepository: `paper_trades` (key id SERIAL), storage-api.md 2.7.
// - create() inserts (no conflict clause, as in the original) and returns the row with its id; on
//   a Database it is never re-run after COMMIT was sent (D13). `decision` stays free text (the
//   spec names no closed set for it) but must not be empty; created_at is stored canonical
//   (empty: now; D8/D12). The input's id is ignored. candidate_id must name a polymarket_candidates
//   row (D30: the schema has no foreign key): otherwise std::invalid_argument naming the column,
//   checked in the INSERT itself (INSERT .. WHERE EXISTS), so nothing is written.
// - get_by_candidate() returns the newest paper trade of the candidate (highest id): the original
//   took whichever row came first (fix for D21).
// - Lists are newest first by created_at (by time, D8: repo_support.h) with id DESC as tie-breaker
//   (D28).
// LiveOrderRepository: `live_orders` (key id SERIAL; order_id UNIQUE, nullable), storage-api.md 2.8.
// - create() writes order_id .. submitted_at (fill_*, filled_at, updated_at of the input are
//   ignored, as in the original). `status` must be a LiveOrderStatus text (D25); submitted_at is
//   stored canonical (empty: now). A duplicate non-null order_id throws pqxx::unique_violation.
//   candidate_id must name a polymarket_candidates row, as for paper trades (D30).
// - update_status() is a state machine (fix for D23): submitted -> partial | filled | cancelled |
//   rejected; partial -> partial | filled | cancelled; cancelled -> partial | filled (a fill the
//   exchange made before the cancel took effect, reported after it was recorded); filled and
//   rejected are final. A reported fill is never lost to a cancel: a late partial fill is stored
//   on the cancelled order, which stays cancelled (nothing of it rests), a late full fill makes it
//   filled (the cancel's reason, of a cancel that did not take, is replaced by the fill's, none
//   unless given). The guard is in the UPDATE's WHERE (atomic under concurrency). A refused
//   transition and an unknown order_id both return nullopt and change nothing; get_by_order_id()
//   tells them apart. fill_price, fill_size and reason keep their stored value when not given
//   (COALESCE, as in the original; a late full fill's reason is the one exception). fill_size is
//   the order's cumulative fill and never shrinks: a report of less than the stored fill (a stale
//   poll after a websocket update) keeps the stored size and its price (a departure from
//   storage-api.md 2.8's COALESCE, which let a stale report lower it; a report of the same size
//   updates the price, as a correction). filled_at is
//   set to now exactly when the order becomes filled; updated_at is always now.
// - get_active() is every submitted or partial order; lists are newest first by submitted_at (by
//   time, D8: repo_support.h), id DESC as tie-breaker (D28).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "repos/repo_support.h"

namespace pm {

class PaperTradeRepository : public BaseRepository<PaperTrade, std::int32_t> {
 public:
  explicit PaperTradeRepository(DbTarget target) : BaseRepository(target, "paper_trades", "id", "integer") {}

  // Throws std::invalid_argument for an empty decision or an unparseable created_at, and
  // TimestampUnitError (a RefusedValueError) for a trigger_timestamp, when given, that is not
  // epoch ms or is more than 24 h after now, as CandidateRepository::create; nothing is written.
  PaperTrade create(const PaperTrade& trade) const;
  std::optional<PaperTrade> get_by_candidate(std::int32_t candidate_id) const;
  std::vector<PaperTrade> get_recent(int limit = 100) const;
  std::vector<PaperTrade> get_by_decision(const std::string& decision, int limit = 100) const;
};

enum class LiveOrderStatus { Submitted, Partial, Filled, Cancelled, Rejected };
std::string_view to_string(LiveOrderStatus status);  // "submitted", "partial", ...
std::optional<LiveOrderStatus> parse_live_order_status(std::string_view text);
bool can_transition(LiveOrderStatus from, LiveOrderStatus to);

class LiveOrderRepository : public BaseRepository<LiveOrder, std::int32_t> {
 public:
  explicit LiveOrderRepository(DbTarget target) : BaseRepository(target, "live_orders", "id", "integer") {}

  // Throws std::invalid_argument for an unknown status or an unparseable submitted_at.
  LiveOrder create(const LiveOrder& order) const;
  std::optional<LiveOrder> get_by_order_id(const std::string& order_id) const;
  std::vector<LiveOrder> get_active() const;
  std::vector<LiveOrder> get_by_status(LiveOrderStatus status, int limit = 100) const;
  std::vector<LiveOrder> get_by_token(const std::string& token_id) const;  // no limit

  // nullopt when the order is unknown or the transition is not allowed.
  std::optional<LiveOrder> update_status(const std::string& order_id, LiveOrderStatus status,
                                         std::optional<double> fill_price = std::nullopt,
                                         std::optional<double> fill_size = std::nullopt,
                                         std::optional<std::string> reason = std::nullopt) const;
  std::optional<LiveOrder> mark_filled(const std::string& order_id, double fill_price, double fill_size) const;
  std::optional<LiveOrder> mark_cancelled(const std::string& order_id,
                                          std::optional<std::string> reason = std::nullopt) const;
  std::optional<LiveOrder> mark_rejected(const std::string& order_id, const std::string& reason) const;
};

}  // namespace pm

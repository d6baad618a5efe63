#pragma once
// OrderbookRepository: `orderbook_snapshots` (PK (condition_id, token_id, snapshot_at);
// snapshot_at TIMESTAMP holding UTC), storage-api.md 2.16. Times are canonical ISO UTC text
// (repos/tiered_support.h).
// - bids/asks are JSON text (a list of levels, e.g. `[{"price": 0.5, "size": 10}]`), stored as
//   JSONB: invalid JSON is refused by the server (pqxx::data_exception) and nothing is stored. As
//   in the original, an empty list (`[]`, in any spacing) and nullopt are both stored as NULL, and
//   read back as nullopt. Read-back text is PostgreSQL's JSONB rendering (keys sorted by length,
//   one space after `:` and `,`), equal as JSON but not byte for byte to what was saved.
// - save(snapshot) inserts with ON CONFLICT DO NOTHING and returns true when a row was inserted
//   (false: a snapshot with the same key already exists and is left unchanged).
// - get_latest(cid, token): newest snapshot or nullopt. get_history(cid, token, hours = 24):
//   snapshots taken in the last `hours` (snapshot_at >= now - hours), newest first.
// - cleanup_old_snapshots(): deletes the snapshots older than 7 days, returns how many.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <pqxx/row>

#include "repos/db_target.h"
#include "repos/models.h"

namespace pm {

struct OrderbookSnapshot {  // orderbook_snapshots
  std::string condition_id;
  std::string token_id;
  std::string snapshot_at;  // canonical ISO UTC
  std::optional<double> best_bid;
  std::optional<double> best_ask;
  std::optional<double> spread;
  std::optional<double> mid_price;
  std::optional<std::string> bids;  // JSON list text; nullopt = NULL (also for an empty list)
  std::optional<std::string> asks;
  std::optional<double> bid_depth_5pct;
  std::optional<double> ask_depth_5pct;
};

template <> OrderbookSnapshot from_row<OrderbookSnapshot>(const pqxx::row& row);

class OrderbookRepository {
 public:
  explicit OrderbookRepository(DbTarget target) : target_(target) {}

  bool save(const OrderbookSnapshot& snapshot) const;
  std::optional<OrderbookSnapshot> get_latest(const std::string& condition_id, const std::string& token_id) const;
  std::vector<OrderbookSnapshot> get_history(const std::string& condition_id, const std::string& token_id,
                                             int hours = 24) const;
  std::int64_t cleanup_old_snapshots() const;
  // The number of snapshots (storage-api.md 2.0 `count`).
  std::int64_t count() const;

 private:
  DbTarget target_;
};

}  // namespace pm

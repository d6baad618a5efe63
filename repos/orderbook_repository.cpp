#include "repos/orderbook_repository.h"
#include "repos/repo_support.h"

#include <stdexcept>

#include "repos/rows.h"
#include "repos/tiered_support.h"

namespace pm {

template <>
OrderbookSnapshot from_row<OrderbookSnapshot>(const pqxx::row& row) {
  OrderbookSnapshot s;
  s.condition_id = row["condition_id"].as<std::string>();
  s.token_id = row["token_id"].as<std::string>();
  s.snapshot_at = tiered::read_time(row["snapshot_at"]);
  s.best_bid = optional_field<double>(row["best_bid"]);
  s.best_ask = optional_field<double>(row["best_ask"]);
  s.spread = optional_field<double>(row["spread"]);
  s.mid_price = optional_field<double>(row["mid_price"]);
  s.bids = optional_field<std::string>(row["bids"]);
  s.asks = optional_field<std::string>(row["asks"]);
  s.bid_depth_5pct = optional_field<double>(row["bid_depth_5pct"]);
  s.ask_depth_5pct = optional_field<double>(row["ask_depth_5pct"]);
  return s;
}

bool OrderbookRepository::save(const OrderbookSnapshot& s) const {
  const std::string at = tiered::write_time(s.snapshot_at, "orderbook_snapshots.snapshot_at");
  detail::require_finite({{s.best_bid, "orderbook_snapshots.best_bid"},
                          {s.best_ask, "orderbook_snapshots.best_ask"},
                          {s.spread, "orderbook_snapshots.spread"},
                          {s.mid_price, "orderbook_snapshots.mid_price"},
                          {s.bid_depth_5pct, "orderbook_snapshots.bid_depth_5pct"},
                          {s.ask_depth_5pct, "orderbook_snapshots.ask_depth_5pct"}});
  return target_.run([&](pqxx::transaction_base& tx) {
    return tx.exec_params(
                 R"(INSERT INTO orderbook_snapshots
                      (condition_id, token_id, snapshot_at, best_bid, best_ask, spread, mid_price, bids,
                       asks, bid_depth_5pct, ask_depth_5pct)
                    VALUES ($1, $2, ($3::timestamptz AT TIME ZONE 'UTC'), $4::real, $5::real, $6::real,
                            $7::real, NULLIF($8::jsonb, '[]'::jsonb), NULLIF($9::jsonb, '[]'::jsonb),
                            $10::real, $11::real)
                    ON CONFLICT DO NOTHING)",
                 s.condition_id, s.token_id, at, s.best_bid, s.best_ask, s.spread, s.mid_price, s.bids,
                 s.asks, s.bid_depth_5pct, s.ask_depth_5pct)
               .affected_rows() > 0;
  });
}

std::optional<OrderbookSnapshot> OrderbookRepository::get_latest(const std::string& condition_id,
                                                                 const std::string& token_id) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_optional_model<OrderbookSnapshot>(tx.exec_params(
        R"(SELECT * FROM orderbook_snapshots WHERE condition_id = $1 AND token_id = $2
           ORDER BY snapshot_at DESC LIMIT 1)",
        condition_id, token_id));
  });
}

std::vector<OrderbookSnapshot> OrderbookRepository::get_history(const std::string& condition_id,
                                                                const std::string& token_id, int hours) const {
  if (hours < 0) throw std::invalid_argument("hours must not be negative");
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<OrderbookSnapshot>(tx.exec_params(
        std::string(R"(SELECT * FROM orderbook_snapshots WHERE condition_id = $1 AND token_id = $2
                         AND snapshot_at >= )") +
            tiered::kNowUtc + R"( - make_interval(hours => $3)
                       ORDER BY snapshot_at DESC)",
        condition_id, token_id, hours));
  });
}

std::int64_t OrderbookRepository::cleanup_old_snapshots() const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return static_cast<std::int64_t>(
        tx.exec(std::string("DELETE FROM orderbook_snapshots WHERE snapshot_at < ") + tiered::kNowUtc +
                " - interval '7 days'")
            .affected_rows());
  });
}

std::int64_t OrderbookRepository::count() const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return tx.exec1("SELECT count(*) FROM orderbook_snapshots")[0].as<std::int64_t>();
  });
}

}  // namespace pm

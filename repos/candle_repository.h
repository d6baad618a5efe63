#pragma once
// CandleRepository: `price_candles` (PK (condition_id, token_id, resolution, bucket_start);
// bucket_start TIMESTAMP holding UTC), storage-api.md 2.16. Times are canonical ISO UTC text
// (repos/tiered_support.h); resolution is one of "5m", "1h", "1d", anything else throws
// std::invalid_argument (the original's ValueError) before any SQL runs.
// - upsert(candle) returns the stored candle. Merge rule on conflict (fix for D31): the given
//   candle is the complete aggregate of its bucket so far, so volume, trade_count, vwap and close
//   are replaced, high takes the max and low the min of old and new, open is kept. Re-upserting the
//   same candle therefore leaves it unchanged (the original added volume and trade_count, which
//   double-counted).
// - get_candles(cid, token, resolution, start, end = now, limit = 1000): buckets in [start, end],
//   newest first. get_latest_candle(): the newest or nullopt.
// - aggregate_from_trades(cid, token, resolution, since = now - 1 day) rebuilds the candles from
//   `polymarket_trades` in ONE transaction (fix for D31: the original's delete and insert were
//   separate statements, so a failure left a gap). `since` is first rounded down to the start of
//   its bucket, so every rebuilt bucket is complete: the candles with bucket_start >= that start
//   are deleted, then one INSERT ... SELECT rebuilds them from the trades at or after it. Trades
//   with a NULL price or size are skipped; open/close are the price of the first/last trade by
//   (timestamp, trade_id); volume = sum(size * price); vwap = volume / sum(size) (NULL when the
//   sizes sum to 0), each product and sum computed in float8 and rounded to the REAL column once
//   (a sum over REAL adds in float4, which drifts: D6). `polymarket_trades.timestamp` is read in the configured TimestampUnit (D10;
//   the original assumed ms): from the Database's config, or as given with a caller's
//   transaction. Returns the number of candles inserted.
// - aggregate_all_resolutions() runs it for 5m, 1h and 1d (each its own transaction unless a
//   caller's transaction is used) and returns {resolution: count}.
// - cleanup_old_candles(): deletes 5m candles older than 7 days and 1h candles older than 90
//   days (by bucket_start), keeps every 1d candle, returns the number deleted (affected_rows).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <pqxx/row>

#include "repos/db_target.h"
#include "repos/models.h"
#include "repos/timestamp_unit.h"

namespace pm {

struct PriceCandle {  // price_candles
  std::string condition_id;
  std::string token_id;
  std::string resolution;    // "5m", "1h" or "1d"
  std::string bucket_start;  // canonical ISO UTC
  double open_price = 0;
  double high_price = 0;
  double low_price = 0;
  double close_price = 0;
  double volume = 0;
  std::int32_t trade_count = 0;
  std::optional<double> vwap;
};

template <> PriceCandle from_row<PriceCandle>(const pqxx::row& row);

// Bucket width of a resolution in seconds; std::invalid_argument for anything but 5m, 1h, 1d.
std::int64_t candle_interval_seconds(const std::string& resolution);

class CandleRepository {
 public:
  // On a Database the trade timestamp unit comes from its config; in a caller's transaction it
  // is given.
  explicit CandleRepository(Database& db);
  CandleRepository(pqxx::transaction_base& tx, TimestampUnit unit);

  PriceCandle upsert(const PriceCandle& candle) const;
  std::vector<PriceCandle> get_candles(const std::string& condition_id, const std::string& token_id,
                                       const std::string& resolution, const std::string& start,
                                       const std::optional<std::string>& end = std::nullopt,
                                       int limit = 1000) const;
  std::optional<PriceCandle> get_latest_candle(const std::string& condition_id, const std::string& token_id,
                                               const std::string& resolution) const;
  std::int64_t aggregate_from_trades(const std::string& condition_id, const std::string& token_id,
                                     const std::string& resolution,
                                     const std::optional<std::string>& since = std::nullopt) const;
  std::map<std::string, std::int64_t> aggregate_all_resolutions(
      const std::string& condition_id, const std::string& token_id,
      const std::optional<std::string>& since = std::nullopt) const;
  std::int64_t cleanup_old_candles() const;
  // The number of candles (storage-api.md 2.0 `count`).
  std::int64_t count() const;

  TimestampUnit unit() const { return unit_; }

 private:
  DbTarget target_;
  TimestampUnit unit_;
};

}  // namespace pm

#include "repos/candle_repository.h"

#include <chrono>
#include <stdexcept>

#include "repos/repo_support.h"
#include "repos/rows.h"
#include "repos/tiered_support.h"
#include "repos/trade_unit_check.h"

namespace pm {

template <>
PriceCandle from_row<PriceCandle>(const pqxx::row& row) {
  PriceCandle c;
  c.condition_id = row["condition_id"].as<std::string>();
  c.token_id = row["token_id"].as<std::string>();
  c.resolution = row["resolution"].as<std::string>();
  c.bucket_start = tiered::read_time(row["bucket_start"]);
  c.open_price = row["open_price"].as<double>();
  c.high_price = row["high_price"].as<double>();
  c.low_price = row["low_price"].as<double>();
  c.close_price = row["close_price"].as<double>();
  c.volume = row["volume"].as<double>();
  c.trade_count = row["trade_count"].as<std::int32_t>();
  c.vwap = optional_field<double>(row["vwap"]);
  return c;
}

std::int64_t candle_interval_seconds(const std::string& resolution) {
  if (resolution == "5m") return 300;
  if (resolution == "1h") return 3600;
  if (resolution == "1d") return 86400;
  throw std::invalid_argument("candle resolution must be 5m, 1h or 1d, not '" + resolution + "'");
}

namespace {

constexpr const char* kCandleResolutions[] = {"5m", "1h", "1d"};

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

}  // namespace

CandleRepository::CandleRepository(Database& db) : target_(db), unit_(db.config().trade_timestamp_unit) {}

CandleRepository::CandleRepository(pqxx::transaction_base& tx, TimestampUnit unit) : target_(tx), unit_(unit) {}

PriceCandle CandleRepository::upsert(const PriceCandle& c) const {
  candle_interval_seconds(c.resolution);
  const std::string bucket = tiered::write_time(c.bucket_start, "price_candles.bucket_start");
  detail::require_finite({{c.open_price, "price_candles.open_price"}, {c.high_price, "price_candles.high_price"},
                          {c.low_price, "price_candles.low_price"}, {c.close_price, "price_candles.close_price"},
                          {c.volume, "price_candles.volume"}});
  detail::require_finite(c.vwap, "price_candles.vwap");
  return target_.run([&](pqxx::transaction_base& tx) {
    return from_row<PriceCandle>(tx.exec_params1(
        R"(INSERT INTO price_candles AS p
             (condition_id, token_id, resolution, bucket_start, open_price, high_price, low_price,
              close_price, volume, trade_count, vwap)
           VALUES ($1, $2, $3, ($4::timestamptz AT TIME ZONE 'UTC'), $5::real, $6::real, $7::real,
                   $8::real, $9::real, $10, $11::real)
           ON CONFLICT (condition_id, token_id, resolution, bucket_start) DO UPDATE
             SET high_price = GREATEST(p.high_price, EXCLUDED.high_price),
                 low_price = LEAST(p.low_price, EXCLUDED.low_price),
                 close_price = EXCLUDED.close_price, volume = EXCLUDED.volume,
                 trade_count = EXCLUDED.trade_count, vwap = EXCLUDED.vwap
           RETURNING *)",
        c.condition_id, c.token_id, c.resolution, bucket, c.open_price, c.high_price, c.low_price,
        c.close_price, c.volume, c.trade_count, c.vwap));
  });
}

std::vector<PriceCandle> CandleRepository::get_candles(const std::string& condition_id, const std::string& token_id,
                                                       const std::string& resolution, const std::string& start,
                                                       const std::optional<std::string>& end, int limit) const {
  candle_interval_seconds(resolution);
  detail::check_limit(limit);
  const std::string from = tiered::write_time(start, "start");
  const std::string to = end ? tiered::write_time(*end, "end") : now_iso();
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<PriceCandle>(tx.exec_params(
        R"(SELECT * FROM price_candles
           WHERE condition_id = $1 AND token_id = $2 AND resolution = $3
             AND bucket_start >= ($4::timestamptz AT TIME ZONE 'UTC')
             AND bucket_start <= ($5::timestamptz AT TIME ZONE 'UTC')
           ORDER BY bucket_start DESC LIMIT $6)",
        condition_id, token_id, resolution, from, to, limit));
  });
}

std::optional<PriceCandle> CandleRepository::get_latest_candle(const std::string& condition_id,
                                                               const std::string& token_id,
                                                               const std::string& resolution) const {
  candle_interval_seconds(resolution);
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_optional_model<PriceCandle>(tx.exec_params(
        R"(SELECT * FROM price_candles WHERE condition_id = $1 AND token_id = $2 AND resolution = $3
           ORDER BY bucket_start DESC LIMIT 1)",
        condition_id, token_id, resolution));
  });
}

std::int64_t CandleRepository::aggregate_from_trades(const std::string& condition_id, const std::string& token_id,
                                                     const std::string& resolution,
                                                     const std::optional<std::string>& since) const {
  const std::int64_t interval = candle_interval_seconds(resolution);
  const SystemTime since_time = since ? tiered::parse_time(*since, "since")
                                      : std::chrono::system_clock::now() - std::chrono::hours(24);
  const std::int64_t since_s =
      floor_div(std::chrono::duration_cast<std::chrono::milliseconds>(since_time.time_since_epoch()).count(), 1000);
  const std::int64_t bucket_s = floor_div(since_s, interval) * interval;
  const std::string bucket_iso = format_iso(SystemTime(std::chrono::seconds(bucket_s)));
  const std::int64_t per_second = unit_ == TimestampUnit::Milliseconds ? 1000 : 1;
  const std::int64_t cutoff = bucket_s * per_second;
  return target_.run([&](pqxx::transaction_base& tx) {
    require_condition_trades_in_unit(tx, condition_id, unit_);  // before the stored candles go
    tx.exec_params(
        R"(DELETE FROM price_candles WHERE condition_id = $1 AND token_id = $2 AND resolution = $3
             AND bucket_start >= ($4::timestamptz AT TIME ZONE 'UTC'))",
        condition_id, token_id, resolution, bucket_iso);
    // $5: the bucket width in the trades' unit; a bucket's start is floor(timestamp / $5) * $6 s.
    return static_cast<std::int64_t>(
        tx.exec_params(
              R"(INSERT INTO price_candles AS p
                   (condition_id, token_id, resolution, bucket_start, open_price, high_price, low_price,
                    close_price, volume, trade_count, vwap)
                 SELECT $1, $2, $3,
                        to_timestamp((floor(t."timestamp"::numeric / $5) * $6)::double precision)
                          AT TIME ZONE 'UTC',
                        (array_agg(t.price ORDER BY t."timestamp", t.trade_id))[1],
                        max(t.price), min(t.price),
                        (array_agg(t.price ORDER BY t."timestamp" DESC, t.trade_id DESC))[1],
                        sum(t.size::float8 * t.price::float8), count(*),
                        sum(t.size::float8 * t.price::float8) / NULLIF(sum(t.size::float8), 0)
                 FROM polymarket_trades t
                 WHERE t.condition_id = $1 AND t.token_id = $2 AND t."timestamp" >= $4
                   AND t.price IS NOT NULL AND t.size IS NOT NULL
                 GROUP BY 4
                 ON CONFLICT (condition_id, token_id, resolution, bucket_start) DO UPDATE
                   SET open_price = EXCLUDED.open_price, high_price = EXCLUDED.high_price,
                       low_price = EXCLUDED.low_price, close_price = EXCLUDED.close_price,
                       volume = EXCLUDED.volume, trade_count = EXCLUDED.trade_count,
                       vwap = EXCLUDED.vwap)",
              condition_id, token_id, resolution, cutoff, interval * per_second, interval)
            .affected_rows());
  });
}

std::map<std::string, std::int64_t> CandleRepository::aggregate_all_resolutions(
    const std::string& condition_id, const std::string& token_id, const std::optional<std::string>& since) const {
  std::map<std::string, std::int64_t> out;
  for (const char* resolution : kCandleResolutions)
    out[resolution] = aggregate_from_trades(condition_id, token_id, resolution, since);
  return out;
}

std::int64_t CandleRepository::cleanup_old_candles() const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return static_cast<std::int64_t>(
        tx.exec(std::string(R"(DELETE FROM price_candles
                               WHERE (resolution = '5m' AND bucket_start < )") +
                tiered::kNowUtc + R"( - interval '7 days')
                                  OR (resolution = '1h' AND bucket_start < )" +
                tiered::kNowUtc + " - interval '90 days')")
            .affected_rows());
  });
}

std::int64_t CandleRepository::count() const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return tx.exec1("SELECT count(*) FROM price_candles")[0].as<std::int64_t>();
  });
}

}  // namespace pm

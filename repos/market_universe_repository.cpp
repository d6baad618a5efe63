#include "repos/market_universe_repository.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include <pqxx/array>
#include <pqxx/strconv>

#include "repos/repo_support.h"
#include "repos/rows.h"
#include "repos/tiered_support.h"

namespace pm {

namespace {

// The elements of a one-dimensional text[] field (NULL elements read as empty text).
std::vector<std::string> read_text_array(const pqxx::field& field) {
  std::vector<std::string> out;
  if (field.is_null()) return out;
  auto parser = field.as_array();
  for (;;) {
    auto [juncture, value] = parser.get_next();
    if (juncture == pqxx::array_parser::juncture::done) break;
    if (juncture == pqxx::array_parser::juncture::string_value) out.push_back(value);
    if (juncture == pqxx::array_parser::juncture::null_value) out.emplace_back();
  }
  return out;
}

// Extra output columns that list the outcomes of `table`.outcomes in order, as three arrays.
std::string outcome_columns(const std::string& table) {
  auto column = [&](const char* key, const char* name) {
    return std::string("ARRAY(SELECT o.e->>'") + key + "' FROM jsonb_array_elements(" + table +
           ".outcomes) WITH ORDINALITY AS o(e, n) ORDER BY o.n) AS " + name;
  };
  return column("token_id", "o_token_ids") + ", " + column("outcome", "o_outcomes") + ", " +
         column("outcome_index", "o_indices");
}

// The outcomes from the three parallel arrays of outcome_columns() (a missing name reads as empty
// text, a missing index as 0).
std::vector<OutcomeToken> read_outcomes(const pqxx::row& row) {
  const auto tokens = read_text_array(row["o_token_ids"]);
  const auto names = read_text_array(row["o_outcomes"]);
  const auto indices = read_text_array(row["o_indices"]);
  std::vector<OutcomeToken> outcomes;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    OutcomeToken o;
    o.token_id = tokens[i];
    o.outcome = i < names.size() ? names[i] : std::string();
    o.outcome_index = i < indices.size() && !indices[i].empty() ? std::stoi(indices[i]) : 0;
    outcomes.push_back(std::move(o));
  }
  return outcomes;
}

const std::string& select_markets() {
  static const std::string sql = "SELECT m.*, " + outcome_columns("m") + " FROM market_universe m ";
  return sql;
}

std::vector<MarketUniverse> to_markets(const pqxx::result& r) {
  std::vector<MarketUniverse> out;
  out.reserve(r.size());
  for (const auto& row : r) out.push_back(from_row<MarketUniverse>(row));
  return out;
}

std::string int_array(const std::vector<std::int32_t>& values) {
  std::string out = "{";
  for (auto v : values) {
    if (out.size() > 1) out += ',';
    out += std::to_string(v);
  }
  return out + "}";
}

// The upsert of one market; $8..$10 are the outcomes as parallel arrays. RETURNING adds
// `inserted` (true for a new row) and the outcome arrays.
const std::string& upsert_sql() {
  static const std::string sql = std::string(R"(
    INSERT INTO market_universe AS mu
      (condition_id, market_id, question, description, category, end_date, created_at, outcomes,
       outcome_count, price, best_bid, best_ask, spread, volume_24h, volume_total, liquidity,
       trade_count_24h, price_change_1h, price_change_24h, interestingness_score, tier, pinned_tier,
       is_resolved, resolution_outcome, winning_outcome_index, resolved_at, snapshot_at)
    VALUES ($1, $2, $3, $4, $5, ($6::timestamptz AT TIME ZONE 'UTC'), ($7::timestamptz AT TIME ZONE 'UTC'),
            (SELECT COALESCE(jsonb_agg(jsonb_build_object('token_id', u.t, 'outcome', u.o, 'outcome_index', u.i)
                                       ORDER BY u.n), '[]'::jsonb)
               FROM unnest($8::text[], $9::text[], $10::int[]) WITH ORDINALITY AS u(t, o, i, n)),
            $11, $12::real, $13::real, $14::real, $15::real, $16::real, $17::real, $18::real, $19,
            $20::real, $21::real, $22::real, $23, $24, $25, $26, $27,
            ($28::timestamptz AT TIME ZONE 'UTC'), )") + tiered::kNowUtc + R"()
    ON CONFLICT (condition_id) DO UPDATE SET
      market_id = COALESCE(EXCLUDED.market_id, mu.market_id),
      question = COALESCE(EXCLUDED.question, mu.question),
      description = COALESCE(EXCLUDED.description, mu.description),
      category = COALESCE(EXCLUDED.category, mu.category),
      end_date = COALESCE(EXCLUDED.end_date, mu.end_date),
      created_at = COALESCE(mu.created_at, EXCLUDED.created_at),
      outcomes = CASE WHEN EXCLUDED.outcomes = '[]'::jsonb THEN mu.outcomes ELSE EXCLUDED.outcomes END,
      outcome_count = COALESCE(EXCLUDED.outcome_count, mu.outcome_count),
      price = EXCLUDED.price, best_bid = EXCLUDED.best_bid, best_ask = EXCLUDED.best_ask,
      spread = EXCLUDED.spread, volume_24h = EXCLUDED.volume_24h, volume_total = EXCLUDED.volume_total,
      liquidity = EXCLUDED.liquidity, trade_count_24h = EXCLUDED.trade_count_24h,
      price_change_1h = EXCLUDED.price_change_1h, price_change_24h = EXCLUDED.price_change_24h,
      is_resolved = mu.is_resolved OR EXCLUDED.is_resolved,
      resolution_outcome = COALESCE(EXCLUDED.resolution_outcome, mu.resolution_outcome),
      winning_outcome_index = COALESCE(EXCLUDED.winning_outcome_index, mu.winning_outcome_index),
      resolved_at = COALESCE(EXCLUDED.resolved_at, mu.resolved_at),
      snapshot_at = EXCLUDED.snapshot_at
    RETURNING mu.*, (xmax = 0) AS inserted, )" + outcome_columns("mu");
  return sql;
}

// A market's REAL values must be finite (detail::require_finite), checked before any SQL: in
// upsert_batch for every market first, so a refused one writes nothing of the batch.
void require_finite_numbers(const MarketUniverse& m) {
  detail::require_finite({{m.price, "market_universe.price"}, {m.best_bid, "market_universe.best_bid"},
                          {m.best_ask, "market_universe.best_ask"}, {m.spread, "market_universe.spread"},
                          {m.volume_24h, "market_universe.volume_24h"},
                          {m.volume_total, "market_universe.volume_total"},
                          {m.liquidity, "market_universe.liquidity"},
                          {m.price_change_1h, "market_universe.price_change_1h"},
                          {m.price_change_24h, "market_universe.price_change_24h"},
                          {m.interestingness_score, "market_universe.interestingness_score"}});
}

pqxx::row upsert_one(pqxx::transaction_base& tx, const MarketUniverse& m) {
  const auto end_date = tiered::write_time(m.end_date, "market_universe.end_date");
  const auto created_at = tiered::write_time(m.created_at, "market_universe.created_at");
  const auto resolved_at = tiered::write_time(m.resolved_at, "market_universe.resolved_at");
  std::vector<std::string> tokens, names;
  std::vector<std::int32_t> indices;
  for (const auto& o : m.outcomes) {
    tokens.push_back(o.token_id);
    names.push_back(o.outcome);
    indices.push_back(o.outcome_index);
  }
  return tx.exec_params1(upsert_sql(), m.condition_id, m.market_id, m.question, m.description, m.category,
                         end_date, created_at, tiered::text_array(tokens), tiered::text_array(names),
                         int_array(indices), m.outcome_count, m.price, m.best_bid, m.best_ask, m.spread,
                         m.volume_24h, m.volume_total, m.liquidity, m.trade_count_24h, m.price_change_1h,
                         m.price_change_24h, m.interestingness_score, m.tier, m.pinned_tier, m.is_resolved,
                         m.resolution_outcome, m.winning_outcome_index, resolved_at);
}

void check_offset(int offset) {
  if (offset < 0) throw std::invalid_argument("offset must not be negative");
}

}  // namespace

namespace {

double days_between(SystemTime from, SystemTime to) {
  return std::chrono::duration<double>(to - from).count() / 86'400.0;
}

}  // namespace

std::optional<double> MarketUniverse::days_to_end(SystemTime now) const {
  if (!end_date) return std::nullopt;
  return std::max(0.0, days_between(now, tiered::parse_time(*end_date, "end_date")));
}

std::optional<double> MarketUniverse::market_age_days(SystemTime now) const {
  if (!created_at) return std::nullopt;
  return days_between(tiered::parse_time(*created_at, "created_at"), now);
}

template <>
MarketUniverse from_row<MarketUniverse>(const pqxx::row& row) {
  MarketUniverse m;
  m.condition_id = row["condition_id"].as<std::string>();
  m.market_id = optional_field<std::string>(row["market_id"]);
  m.question = row["question"].as<std::string>();
  m.description = optional_field<std::string>(row["description"]);
  m.category = optional_field<std::string>(row["category"]);
  m.end_date = tiered::read_optional_time(row["end_date"]);
  m.created_at = tiered::read_optional_time(row["created_at"]);
  m.outcomes = read_outcomes(row);
  m.outcome_count = row["outcome_count"].as<std::int32_t>();
  m.price = optional_field<double>(row["price"]);
  m.best_bid = optional_field<double>(row["best_bid"]);
  m.best_ask = optional_field<double>(row["best_ask"]);
  m.spread = optional_field<double>(row["spread"]);
  m.volume_24h = row["volume_24h"].as<double>();
  m.volume_total = row["volume_total"].as<double>();
  m.liquidity = row["liquidity"].as<double>();
  m.trade_count_24h = row["trade_count_24h"].as<std::int32_t>();
  m.price_change_1h = row["price_change_1h"].as<double>();
  m.price_change_24h = row["price_change_24h"].as<double>();
  m.interestingness_score = row["interestingness_score"].as<double>();
  m.tier = row["tier"].as<std::int32_t>();
  m.tier_changed_at = tiered::read_optional_time(row["tier_changed_at"]);
  m.pinned_tier = optional_field<std::int32_t>(row["pinned_tier"]);
  m.is_resolved = row["is_resolved"].as<bool>();
  m.resolution_outcome = optional_field<std::string>(row["resolution_outcome"]);
  m.winning_outcome_index = optional_field<std::int32_t>(row["winning_outcome_index"]);
  m.resolved_at = tiered::read_optional_time(row["resolved_at"]);
  m.snapshot_at = tiered::read_optional_time(row["snapshot_at"]);
  m.created_in_db_at = tiered::read_optional_time(row["created_in_db_at"]);
  m.last_strategy_signal_at = tiered::read_optional_time(row["last_strategy_signal_at"]);
  m.score_below_threshold_since = tiered::read_optional_time(row["score_below_threshold_since"]);
  return m;
}

template <>
PriceSnapshot from_row<PriceSnapshot>(const pqxx::row& row) {
  PriceSnapshot s;
  s.condition_id = row["condition_id"].as<std::string>();
  s.snapshot_at = tiered::read_time(row["snapshot_at"]);
  s.price = optional_field<double>(row["price"]);
  s.volume_24h = optional_field<double>(row["volume_24h"]);
  return s;
}

template <>
StrategyTierRequest from_row<StrategyTierRequest>(const pqxx::row& row) {
  StrategyTierRequest r;
  r.strategy_name = row["strategy_name"].as<std::string>();
  r.condition_id = row["condition_id"].as<std::string>();
  r.requested_tier = row["requested_tier"].as<std::int32_t>();
  r.reason = optional_field<std::string>(row["reason"]);
  r.requested_at = tiered::read_time(row["requested_at"]);
  r.expires_at = tiered::read_time(row["expires_at"]);
  return r;
}

MarketUniverse MarketUniverseRepository::upsert(const MarketUniverse& m) const {
  require_finite_numbers(m);
  return target_.run([&](pqxx::transaction_base& tx) { return from_row<MarketUniverse>(upsert_one(tx, m)); });
}

UpsertBatchResult MarketUniverseRepository::upsert_batch(const std::vector<MarketUniverse>& markets) const {
  if (markets.empty()) return {};
  for (const auto& m : markets) require_finite_numbers(m);
  return target_.run([&](pqxx::transaction_base& tx) {
    UpsertBatchResult result;
    for (const auto& m : markets) {
      if (upsert_one(tx, m)["inserted"].as<bool>())
        ++result.inserted;
      else
        ++result.updated;
    }
    return result;
  });
}

std::optional<MarketUniverse> MarketUniverseRepository::get_by_condition_id(const std::string& condition_id) const {
  return target_.run([&](pqxx::transaction_base& tx) -> std::optional<MarketUniverse> {
    auto r = tx.exec_params(select_markets() + "WHERE m.condition_id = $1", condition_id);
    if (r.empty()) return std::nullopt;
    return from_row<MarketUniverse>(r[0]);
  });
}

std::vector<MarketUniverse> MarketUniverseRepository::query(const MarketQuery& q) const {
  detail::check_limit(q.limit);
  check_offset(q.offset);
  std::optional<std::string> categories, excluded;
  if (q.categories) categories = tiered::text_array(*q.categories);
  if (q.exclude_categories) excluded = tiered::text_array(*q.exclude_categories);
  const std::string now = tiered::kNowUtc;
  const std::string sql = select_markets() + R"(
      WHERE ($1::real IS NULL OR m.price >= $1::real)
        AND ($2::real IS NULL OR m.price <= $2::real)
        AND ($3::real IS NULL OR m.volume_24h >= $3::real)
        AND ($4::real IS NULL OR m.volume_24h <= $4::real)
        AND ($5::text[] IS NULL OR m.category = ANY($5::text[]))
        AND ($6::text[] IS NULL OR m.category <> ALL($6::text[]))
        AND ($7::real IS NULL OR m.interestingness_score >= $7::real)
        AND ($8::float8 IS NULL OR m.end_date >= )" + now + R"( + make_interval(secs => $8::float8 * 86400))
        AND ($9::float8 IS NULL OR m.end_date <= )" + now + R"( + make_interval(secs => $9::float8 * 86400))
        AND ($10::float8 IS NULL OR m.created_at <= )" + now + R"( - make_interval(secs => $10::float8 * 86400))
        AND ($11::float8 IS NULL OR m.created_at >= )" + now + R"( - make_interval(secs => $11::float8 * 86400))
        AND ($12::int IS NULL OR m.tier = $12::int)
        AND ($13::int IS NULL OR m.tier >= $13::int)
        AND ($14::bool OR NOT m.is_resolved)
        AND (NOT $15::bool OR m.outcome_count = 2)
      ORDER BY m.interestingness_score DESC, m.volume_24h DESC, m.condition_id
      LIMIT $16 OFFSET $17)";
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_markets(tx.exec_params(sql, q.min_price, q.max_price, q.min_volume, q.max_volume, categories,
                                     excluded, q.min_interestingness, q.min_days_to_end, q.max_days_to_end,
                                     q.min_market_age_days, q.max_market_age_days, q.tier, q.min_tier,
                                     q.include_resolved, q.binary_only, q.limit, q.offset));
  });
}

std::vector<MarketUniverse> MarketUniverseRepository::get_by_tier(std::int32_t tier, int limit) const {
  detail::check_limit(limit);
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_markets(tx.exec_params(
        select_markets() + R"(WHERE m.tier = $1 AND NOT m.is_resolved
           ORDER BY m.interestingness_score DESC, m.volume_24h DESC, m.condition_id LIMIT $2)",
        tier, limit));
  });
}

std::map<std::int32_t, std::int64_t> MarketUniverseRepository::get_tier_counts() const {
  return target_.run([&](pqxx::transaction_base& tx) {
    std::map<std::int32_t, std::int64_t> out;
    for (const auto& row :
         tx.exec("SELECT tier, count(*) FROM market_universe WHERE NOT is_resolved GROUP BY tier"))
      out[row[0].as<std::int32_t>()] = row[1].as<std::int64_t>();
    return out;
  });
}

std::vector<MarketUniverse> MarketUniverseRepository::get_top_by_score(int limit) const {
  detail::check_limit(limit);
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_markets(tx.exec_params(
        select_markets() + "ORDER BY m.interestingness_score DESC, m.volume_24h DESC, m.condition_id LIMIT $1",
        limit));
  });
}

bool MarketUniverseRepository::promote(const std::string& condition_id, std::int32_t target_tier,
                                       const std::optional<std::string>& /*reason: not stored*/) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return tx.exec_params(std::string("UPDATE market_universe SET tier = $2, tier_changed_at = ") +
                              tiered::kNowUtc + " WHERE condition_id = $1 AND tier < $2",
                          condition_id, target_tier)
               .affected_rows() > 0;
  });
}

bool MarketUniverseRepository::demote(const std::string& condition_id, std::int32_t target_tier) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return tx.exec_params(std::string("UPDATE market_universe SET tier = $2, tier_changed_at = ") +
                              tiered::kNowUtc +
                              " WHERE condition_id = $1 AND tier > $2 AND (pinned_tier IS NULL OR pinned_tier <= $2)",
                          condition_id, target_tier)
               .affected_rows() > 0;
  });
}

bool MarketUniverseRepository::set_pinned_tier(const std::string& condition_id,
                                               std::optional<std::int32_t> tier) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return tx.exec_params("UPDATE market_universe SET pinned_tier = $2 WHERE condition_id = $1", condition_id,
                          tier)
               .affected_rows() > 0;
  });
}

std::int64_t MarketUniverseRepository::update_interestingness_scores(const std::map<std::string, double>& scores) const {
  if (scores.empty()) return 0;
  std::vector<std::string> cids;
  std::string values = "{";
  for (const auto& [cid, score] : scores) {
    detail::require_finite(score, "market_universe.interestingness_score");
    cids.push_back(cid);
    if (values.size() > 1) values += ',';
    values += pqxx::to_string(score);
  }
  values += '}';
  return target_.run([&](pqxx::transaction_base& tx) {
    return static_cast<std::int64_t>(
        tx.exec_params(std::string(R"(UPDATE market_universe m
              SET interestingness_score = u.score,
                  score_below_threshold_since =
                    CASE WHEN u.score::real < 20 THEN COALESCE(m.score_below_threshold_since, )") +
                           tiered::kNowUtc + R"()
                         ELSE NULL END
              FROM unnest($1::text[], $2::float8[]) AS u(cid, score)
              WHERE m.condition_id = u.cid)",
                       tiered::text_array(cids), values)
            .affected_rows());
  });
}

bool MarketUniverseRepository::record_strategy_signal(const std::string& condition_id) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return tx.exec_params(std::string("UPDATE market_universe SET last_strategy_signal_at = ") + tiered::kNowUtc +
                              " WHERE condition_id = $1",
                          condition_id)
               .affected_rows() > 0;
  });
}

bool MarketUniverseRepository::save_price_snapshot(const PriceSnapshot& s) const {
  const std::string at = tiered::write_time(s.snapshot_at, "price_snapshots.snapshot_at");
  detail::require_finite(s.price, "price_snapshots.price");
  detail::require_finite(s.volume_24h, "price_snapshots.volume_24h");
  return target_.run([&](pqxx::transaction_base& tx) {
    return tx.exec_params(
                 R"(INSERT INTO price_snapshots (condition_id, snapshot_at, price, volume_24h)
                    VALUES ($1, ($2::timestamptz AT TIME ZONE 'UTC'), $3::real, $4::real)
                    ON CONFLICT DO NOTHING)",
                 s.condition_id, at, s.price, s.volume_24h)
               .affected_rows() > 0;
  });
}

std::optional<double> MarketUniverseRepository::get_price_at_time(const std::string& condition_id,
                                                                  const std::string& at) const {
  const std::string when = tiered::write_time(at, "at");
  return target_.run([&](pqxx::transaction_base& tx) -> std::optional<double> {
    auto r = tx.exec_params(
        R"(SELECT price FROM price_snapshots
           WHERE condition_id = $1 AND snapshot_at <= ($2::timestamptz AT TIME ZONE 'UTC') AND price IS NOT NULL
           ORDER BY snapshot_at DESC LIMIT 1)",
        condition_id, when);
    if (r.empty()) return std::nullopt;
    return r[0][0].as<double>();
  });
}

std::map<std::string, PriceChange> MarketUniverseRepository::compute_price_changes(
    const std::vector<std::string>& condition_ids) const {
  std::map<std::string, PriceChange> out;
  if (condition_ids.empty()) return out;
  const std::string now = tiered::kNowUtc;
  auto price_before = [&](const char* age) {
    return std::string(R"((SELECT ps.price FROM price_snapshots ps
                  WHERE ps.condition_id = m.condition_id AND ps.price IS NOT NULL
                    AND ps.snapshot_at <= )") +
           now + " - interval '" + age + "' ORDER BY ps.snapshot_at DESC LIMIT 1)";
  };
  const std::string sql = "SELECT m.condition_id, COALESCE(m.price - " + price_before("1 hour") +
                          ", 0), COALESCE(m.price - " + price_before("24 hours") +
                          ", 0) FROM market_universe m WHERE m.condition_id = ANY($1::text[]) AND m.price IS NOT NULL";
  return target_.run([&](pqxx::transaction_base& tx) {
    std::map<std::string, PriceChange> changes;
    for (const auto& row : tx.exec_params(sql, tiered::text_array(condition_ids)))
      changes[row[0].as<std::string>()] = PriceChange{row[1].as<double>(), row[2].as<double>()};
    return changes;
  });
}

StrategyTierRequest MarketUniverseRepository::create_tier_request(const StrategyTierRequest& r) const {
  std::optional<std::string> requested_at;
  if (!r.requested_at.empty()) requested_at = tiered::write_time(r.requested_at, "strategy_tier_requests.requested_at");
  const std::string expires_at = tiered::write_time(r.expires_at, "strategy_tier_requests.expires_at");
  return target_.run([&](pqxx::transaction_base& tx) {
    return from_row<StrategyTierRequest>(tx.exec_params1(
        std::string(R"(INSERT INTO strategy_tier_requests AS r
             (strategy_name, condition_id, requested_tier, reason, requested_at, expires_at)
           VALUES ($1, $2, $3, $4, COALESCE(($5::timestamptz AT TIME ZONE 'UTC'), )") +
            tiered::kNowUtc + R"(), ($6::timestamptz AT TIME ZONE 'UTC'))
           ON CONFLICT (strategy_name, condition_id) DO UPDATE
             SET requested_tier = GREATEST(r.requested_tier, EXCLUDED.requested_tier),
                 reason = EXCLUDED.reason, requested_at = EXCLUDED.requested_at,
                 expires_at = EXCLUDED.expires_at
           RETURNING *)",
        r.strategy_name, r.condition_id, r.requested_tier, r.reason, requested_at, expires_at));
  });
}

std::vector<StrategyTierRequest> MarketUniverseRepository::get_active_tier_requests(std::int32_t min_tier) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<StrategyTierRequest>(tx.exec_params(
        std::string("SELECT * FROM strategy_tier_requests WHERE expires_at > ") + tiered::kNowUtc +
            R"( AND requested_tier >= $1
               ORDER BY requested_tier DESC, requested_at DESC, strategy_name, condition_id)",
        min_tier));
  });
}

std::int64_t MarketUniverseRepository::cleanup_expired_requests() const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return static_cast<std::int64_t>(
        tx.exec(std::string("DELETE FROM strategy_tier_requests WHERE expires_at <= ") + tiered::kNowUtc)
            .affected_rows());
  });
}

std::vector<MarketUniverse> MarketUniverseRepository::get_resolved_markets(const std::optional<std::string>& since,
                                                                           int limit) const {
  detail::check_limit(limit);
  const auto from = tiered::write_time(since, "since");
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_markets(tx.exec_params(
        select_markets() + R"(WHERE m.is_resolved
             AND ($1::timestamptz IS NULL OR m.resolved_at >= ($1::timestamptz AT TIME ZONE 'UTC'))
           ORDER BY m.resolved_at DESC NULLS LAST, m.condition_id LIMIT $2)",
        from, limit));
  });
}

std::optional<MarketResolutionInfo> MarketUniverseRepository::get_resolution(const std::string& condition_id) const {
  return target_.run([&](pqxx::transaction_base& tx) -> std::optional<MarketResolutionInfo> {
    auto r = tx.exec_params(
        R"(SELECT condition_id, is_resolved, resolution_outcome, winning_outcome_index, resolved_at
           FROM market_universe WHERE condition_id = $1)",
        condition_id);
    if (r.empty()) return std::nullopt;
    MarketResolutionInfo info;
    info.condition_id = r[0]["condition_id"].as<std::string>();
    info.is_resolved = r[0]["is_resolved"].as<bool>();
    info.resolution_outcome = optional_field<std::string>(r[0]["resolution_outcome"]);
    info.winning_outcome_index = optional_field<std::int32_t>(r[0]["winning_outcome_index"]);
    info.resolved_at = tiered::read_optional_time(r[0]["resolved_at"]);
    return info;
  });
}

std::optional<PositionPnl> MarketUniverseRepository::get_pnl_for_position(const std::string& condition_id,
                                                                          std::int32_t outcome_index,
                                                                          double entry_price, double size) const {
  auto resolution = get_resolution(condition_id);
  if (!resolution || !resolution->is_resolved || !resolution->winning_outcome_index) return std::nullopt;
  PositionPnl pnl;
  pnl.won = check_position_won(outcome_index, *resolution->winning_outcome_index);
  pnl.exit_price = pnl.won ? 1.0 : 0.0;
  pnl.pnl = (pnl.exit_price - entry_price) * size;
  pnl.pnl_pct = entry_price != 0 ? (pnl.exit_price - entry_price) / entry_price * 100.0 : 0.0;
  pnl.resolution_outcome = resolution->resolution_outcome;
  pnl.resolved_at = resolution->resolved_at;
  return pnl;
}

std::int64_t MarketUniverseRepository::count() const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return tx.exec1("SELECT count(*) FROM market_universe")[0].as<std::int64_t>();
  });
}

}  // namespace pm

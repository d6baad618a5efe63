#include "repos/trigger_repository.h"

#include <stdexcept>

#include "repos/util/clock.h"
#include "repos/pg_array.h"
#include "repos/pg_errors.h"
#include "repos/repo_support.h"
#include "repos/rows.h"
#include "repos/timestamp_unit.h"
#include "repos/watermark_upsert.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <map>

namespace pm {

namespace {

// No conflict target: the primary key and the (condition_id, threshold) unique index both count.
const char* const kInsertTrigger = R"SQL(
INSERT INTO polymarket_first_triggers
  (token_id, condition_id, threshold, trigger_timestamp, price, size, created_at,
   model_score, model_version, outcome, outcome_index)
VALUES ($1, $2, $3::real, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT DO NOTHING
RETURNING *)SQL";

const WatermarkUpsert& trigger_watermarks() {
  static const WatermarkUpsert upsert("trigger_watermarks", "threshold", "real");
  return upsert;
}

// The key G2 deduplicates on must be whole: a NaN threshold would also compare equal to every
// threshold of its condition inside a batch. A refused key is a RefusedValueError (a data error:
// the ingest writer dead-letters the event).
void require_key(const PolymarketFirstTrigger& t) {
  if (t.condition_id.empty())
    throw RefusedValueError("trigger for token '" + t.token_id + "' has an empty condition_id; G2 deduplication needs it");
  if (t.token_id.empty()) throw RefusedValueError("trigger has an empty token_id");
  if (!std::isfinite(t.threshold))
    throw RefusedValueError("trigger for token '" + t.token_id + "' has threshold " + std::to_string(t.threshold) +
                            "; a threshold must be a finite number");
  detail::require_finite({{t.price, "polymarket_first_triggers.price"},
                          {t.size, "polymarket_first_triggers.size"},
                          {t.model_score, "polymarket_first_triggers.model_score"}});
}


// The threshold as its shortest decimal, for messages.
std::string threshold_text(double threshold) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, threshold);
  return ec == std::errc{} ? std::string(buf, end) : std::to_string(threshold);
}

// Throws TimestampUnitError unless `timestamp` is acceptable for `field` (require_timestamp in
// milliseconds, at most `newest`: future_bound of now). `field` is built only for a refusal.
template <class Field>
void require_ms_time(std::int64_t timestamp, std::int64_t newest, Field&& field) {
  if (acceptable_timestamp(timestamp, TimestampUnit::Milliseconds, newest)) return;
  require_timestamp(timestamp, TimestampUnit::Milliseconds, newest, field(), kTriggerUnitSource);
}

std::int64_t newest_trigger_time(FutureBound bound) { return newest_accepted(bound, TimestampUnit::Milliseconds); }

void require_time(const PolymarketFirstTrigger& t, std::int64_t newest) {
  require_ms_time(t.trigger_timestamp, newest, [&] {
    return "polymarket_first_triggers.trigger_timestamp of trigger (" + t.token_id + ", " + t.condition_id + ", " +
           threshold_text(t.threshold) + ")";
  });
}

void require_watermark_time(double threshold, std::int64_t timestamp, std::int64_t newest) {
  detail::require_finite(threshold, "trigger_watermarks.threshold");
  require_ms_time(timestamp, newest, [&] { return "trigger watermark of threshold " + threshold_text(threshold) + ": last_timestamp"; });
}

// created_at as stored: canonical UTC text (D8/D12), now when empty. Throws std::invalid_argument
// for text parse_iso does not accept.
std::string created_at_of(const PolymarketFirstTrigger& t) {
  return detail::write_iso_or_now(t.created_at, "polymarket_first_triggers.created_at");
}

pqxx::result insert_trigger(pqxx::transaction_base& tx, const PolymarketFirstTrigger& t) {
  const std::string created_at = created_at_of(t);
  return tx.exec_params(kInsertTrigger, t.token_id, t.condition_id, t.threshold, t.trigger_timestamp,
                        t.price, t.size, created_at, t.model_score, t.model_version, t.outcome,
                        t.outcome_index);
}

// The row that holds the trigger's key: same token first, else the condition's holder (G2).
pqxx::result holder_of(pqxx::transaction_base& tx, const PolymarketFirstTrigger& t) {
  return tx.exec_params(
      R"(SELECT * FROM polymarket_first_triggers
         WHERE condition_id = $2 AND threshold = $3::real
            OR (token_id = $1 AND condition_id = $2 AND threshold = $3::real)
         ORDER BY (token_id = $1) DESC LIMIT 1)",
      t.token_id, t.condition_id, t.threshold);
}

}  // namespace

const char* to_string(TriggerOutcome outcome) {
  switch (outcome) {
    case TriggerOutcome::Recorded: return "recorded";
    case TriggerOutcome::DuplicateSameToken: return "duplicate_same_token";
    case TriggerOutcome::DuplicateOtherToken: return "duplicate_other_token";
  }
  return "unknown";
}

std::vector<TriggerOutcome> TriggerRepository::record_first_many(
    const std::vector<PolymarketFirstTrigger>& triggers) const {
  const std::int64_t newest = newest_trigger_time(bound_);
  for (const auto& t : triggers) {
    require_key(t);
    require_time(t, newest);
  }
  std::vector<TriggerOutcome> outcomes(triggers.size(), TriggerOutcome::DuplicateOtherToken);
  if (triggers.empty()) return outcomes;
  std::vector<std::string> created_at;
  created_at.reserve(triggers.size());
  for (const auto& t : triggers) created_at.push_back(created_at_of(t));
  // The first trigger of each (condition_id, REAL threshold) in the batch is its candidate. The key
  // is the float the server makes of the text sent (both parse it with correct rounding); rows come
  // back by position (WITH ORDINALITY), never by the server's float text, whose digits depend on
  // the session (extra_float_digits).
  using Key = std::pair<std::string, float>;
  std::map<Key, std::size_t> candidate_of;  // key -> position in `candidates`
  std::vector<std::size_t> candidates;
  std::vector<std::size_t> candidate_for(triggers.size());
  for (std::size_t i = 0; i < triggers.size(); ++i) {
    const auto [it, fresh] = candidate_of.emplace(Key{triggers[i].condition_id, real_as_sent(triggers[i].threshold)}, candidates.size());
    if (fresh) candidates.push_back(i);
    candidate_for[i] = it->second;
  }
  return target_.run([&](pqxx::transaction_base& tx) {
    PgArray token, condition, threshold, ts, price, size, created, score, version, outcome, index;
    for (std::size_t i : candidates) {
      const auto& t = triggers[i];
      token.add_text(t.token_id);
      condition.add_text(t.condition_id);
      threshold.add_number(t.threshold);
      ts.add_integer(t.trigger_timestamp);
      price.add_number(t.price);
      size.add_number(t.size);
      created.add_text(created_at[i]);
      score.add_number(t.model_score);
      version.add_text(t.model_version);
      outcome.add_text(t.outcome);
      index.add_integer(t.outcome_index ? std::optional<std::int64_t>(*t.outcome_index) : std::nullopt);
    }
    // The candidates' positions (1-based) that were inserted: matched to the RETURNING rows on the
    // server, in real.
    const auto inserted = tx.exec_params(
        R"(WITH u AS (
             SELECT * FROM unnest($1::text[], $2::text[], $3::real[], $4::bigint[], $5::real[], $6::real[],
                                  $7::text[], $8::real[], $9::text[], $10::text[], $11::integer[])
                    WITH ORDINALITY
                    AS u(token_id, condition_id, threshold, ts, price, size, created_at, score, version, outcome, idx, n)),
           ins AS (
             INSERT INTO polymarket_first_triggers
               (token_id, condition_id, threshold, trigger_timestamp, price, size, created_at,
                model_score, model_version, outcome, outcome_index)
             SELECT token_id, condition_id, threshold, ts, price, size, created_at, score, version, outcome, idx
             FROM u
             ORDER BY condition_id, threshold  -- one lock order for every writer: no deadlocks between daemons
             ON CONFLICT DO NOTHING
             RETURNING condition_id, threshold)
           SELECT u.n FROM u JOIN ins USING (condition_id, threshold))",
        token.str(), condition.str(), threshold.str(), ts.str(), price.str(), size.str(), created.str(),
        score.str(), version.str(), outcome.str(), index.str());
    std::vector<bool> recorded(candidates.size(), false);
    for (const auto& row : inserted) recorded.at(row[0].as<std::size_t>() - 1) = true;
    // Who holds each key that was not recorded here: a row stored before (or by a concurrent
    // writer that committed first), looked up by position too.
    std::vector<std::optional<std::string>> holder(candidates.size());
    for (std::size_t c = 0; c < candidates.size(); ++c)
      if (recorded[c]) holder[c] = triggers[candidates[c]].token_id;
    if (inserted.size() < candidates.size()) {
      PgArray conditions, thresholds;
      for (std::size_t i : candidates) {
        conditions.add_text(triggers[i].condition_id);
        thresholds.add_number(triggers[i].threshold);
      }
      const auto stored = tx.exec_params(
          R"(SELECT k.n, f.token_id FROM polymarket_first_triggers f
             JOIN unnest($1::text[], $2::real[]) WITH ORDINALITY AS k(condition_id, threshold, n)
               USING (condition_id, threshold))",
          conditions.str(), thresholds.str());
      for (const auto& row : stored) holder.at(row[0].as<std::size_t>() - 1) = row[1].as<std::string>();
    }
    for (std::size_t i = 0; i < triggers.size(); ++i) {
      const std::size_t c = candidate_for[i];
      if (candidates[c] == i && recorded[c]) {
        outcomes[i] = TriggerOutcome::Recorded;
      } else if (holder[c] == triggers[i].token_id) {
        outcomes[i] = TriggerOutcome::DuplicateSameToken;
      }
    }
    return outcomes;
  });
}

TriggerOutcome TriggerRepository::record_first(const PolymarketFirstTrigger& trigger) const {
  return record_first_many({trigger}).front();
}

WriteResult<PolymarketFirstTrigger> TriggerRepository::create(const PolymarketFirstTrigger& trigger) const {
  require_key(trigger);
  require_time(trigger, newest_trigger_time(bound_));
  return target_.run([&](pqxx::transaction_base& tx) {
    auto inserted = insert_trigger(tx, trigger);
    if (!inserted.empty())
      return WriteResult<PolymarketFirstTrigger>{true, from_row<PolymarketFirstTrigger>(inserted[0])};
    return WriteResult<PolymarketFirstTrigger>{false,
                                               from_row<PolymarketFirstTrigger>(holder_of(tx, trigger).at(0))};
  });
}

bool TriggerRepository::has_triggered(const std::string& token_id, const std::string& condition_id,
                                      double threshold) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return !tx.exec_params(
                  R"(SELECT 1 FROM polymarket_first_triggers
                     WHERE token_id = $1 AND condition_id = $2 AND threshold = $3::real)",
                  token_id, condition_id, threshold)
                .empty();
  });
}

bool TriggerRepository::has_condition_triggered(const std::string& condition_id, double threshold) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return !tx.exec_params(
                  "SELECT 1 FROM polymarket_first_triggers WHERE condition_id = $1 AND threshold = $2::real",
                  condition_id, threshold)
                .empty();
  });
}

bool TriggerRepository::should_trigger(const std::string& token_id, const std::string& condition_id,
                                       double threshold) const {
  if (condition_id.empty()) return false;  // cannot be recorded, so never "should"
  return target_.run([&](pqxx::transaction_base& tx) {
    return tx.exec_params1(
                 R"(SELECT NOT EXISTS (SELECT 1 FROM polymarket_first_triggers
                                       WHERE condition_id = $2 AND threshold = $3::real)
                       AND NOT EXISTS (SELECT 1 FROM polymarket_first_triggers
                                       WHERE token_id = $1 AND condition_id = $2 AND threshold = $3::real))",
                 token_id, condition_id, threshold)[0]
        .as<bool>();
  });
}

std::vector<PolymarketFirstTrigger> TriggerRepository::get_by_token(const std::string& token_id,
                                                                   int limit) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<PolymarketFirstTrigger>(tx.exec_params(
        R"(SELECT * FROM polymarket_first_triggers WHERE token_id = $1
           ORDER BY trigger_timestamp DESC, condition_id, threshold LIMIT $2)",
        token_id, limit));
  });
}

std::vector<PolymarketFirstTrigger> TriggerRepository::get_by_condition(const std::string& condition_id,
                                                                       int limit) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<PolymarketFirstTrigger>(tx.exec_params(
        R"(SELECT * FROM polymarket_first_triggers WHERE condition_id = $1
           ORDER BY trigger_timestamp DESC, token_id, threshold LIMIT $2)",
        condition_id, limit));
  });
}

std::vector<PolymarketFirstTrigger> TriggerRepository::get_recent(std::int64_t since_timestamp,
                                                                 std::optional<double> threshold) const {
  // A since in seconds is below every stored trigger time and would return them all.
  if (since_timestamp > 0)
    require_timestamp_unit(since_timestamp, TimestampUnit::Milliseconds, "get_recent since_timestamp", kTriggerUnitSource);
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<PolymarketFirstTrigger>(tx.exec_params(
        R"(SELECT * FROM polymarket_first_triggers
           WHERE trigger_timestamp >= $1 AND ($2::real IS NULL OR threshold = $2::real)
           ORDER BY trigger_timestamp DESC, condition_id, token_id)",
        since_timestamp, threshold));
  });
}

std::int64_t TriggerRepository::count() const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return tx.exec1("SELECT count(*) FROM polymarket_first_triggers")[0].as<std::int64_t>();
  });
}

std::optional<PolymarketFirstTrigger> TriggerRepository::get_by_id(const TriggerKey& key) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_optional_model<PolymarketFirstTrigger>(tx.exec_params(
        "SELECT * FROM polymarket_first_triggers WHERE token_id = $1 AND condition_id = $2 AND threshold = $3::real",
        key.token_id, key.condition_id, key.threshold));
  });
}

bool TriggerRepository::exists(const TriggerKey& key) const {
  return has_triggered(key.token_id, key.condition_id, key.threshold);
}

bool TriggerRepository::remove(const TriggerKey& key) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return tx.exec_params(
                 "DELETE FROM polymarket_first_triggers WHERE token_id = $1 AND condition_id = $2 AND threshold = $3::real",
                 key.token_id, key.condition_id, key.threshold)
               .affected_rows() > 0;
  });
}

std::optional<TriggerWatermark> TriggerWatermarkRepository::get(double threshold) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_optional_model<TriggerWatermark>(
        tx.exec_params("SELECT * FROM trigger_watermarks WHERE threshold = $1::real", threshold));
  });
}

std::int64_t TriggerWatermarkRepository::get_timestamp(double threshold) const {
  auto wm = get(threshold);
  return wm ? wm->last_timestamp : 0;
}

std::size_t TriggerWatermarkRepository::advance(std::span<const Advance> marks) const {
  if (marks.empty()) return 0;
  const std::int64_t newest = newest_trigger_time(bound_);
  for (const Advance& m : marks) require_watermark_time(m.threshold, m.timestamp, newest);
  // Thresholds that are one REAL are one row: the newest of them goes (one statement may not
  // touch a row twice: 21000).
  std::map<float, const Advance*> newest_of;
  for (const Advance& m : marks) {
    const auto [it, fresh] = newest_of.try_emplace(real_as_sent(m.threshold), &m);
    if (!fresh && m.timestamp > it->second->timestamp) it->second = &m;
  }
  PgArray thresholds, timestamps, updated_at;
  for (const auto& [key, mark] : newest_of) {
    const Advance& m = *mark;
    thresholds.add_number(m.threshold);
    timestamps.add_integer(m.timestamp);
    // One fixed format, as every other writer stores time text (D8): empty is now, and a text
    // that is no time throws std::invalid_argument (all are checked before any SQL).
    updated_at.add_text(detail::write_iso_or_now(m.updated_at, "trigger_watermarks.updated_at"));
  }
  return target_.run([&](pqxx::transaction_base& tx) { return trigger_watermarks().many(tx, thresholds, timestamps, updated_at); });
}

TriggerWatermark TriggerWatermarkRepository::update(double threshold, std::int64_t timestamp) const {
  require_watermark_time(threshold, timestamp, newest_trigger_time(bound_));
  return target_.run([&](pqxx::transaction_base& tx) {
    return from_row<TriggerWatermark>(trigger_watermarks().one(tx, threshold, timestamp));
  });
}

}  // namespace pm

#pragma once
// TriggerRepository: `polymarket_first_triggers`, storage-api.md 2.3 with the G2 rule built in.
// A trigger is recorded only if no trigger exists for (token_id, condition_id, threshold) AND none
// exists for (condition_id, threshold) from any token. record_first() is that check and the insert
// as ONE statement (INSERT .. ON CONFLICT DO NOTHING against both unique keys), so among any number
// of concurrent callers, in any number of processes, exactly one wins (fixes D2, D3, D5).
// Thresholds are REAL: every comparison casts the parameter to real (fix for D7). An empty
// condition_id would defeat G2 and is refused with RefusedValueError (pg_errors.h: a
// std::invalid_argument, classified as a data error) (fix for D4).
// created_at is stored as canonical UTC text (clock.h: empty means now; any text parse_iso accepts
// is re-rendered; other text throws std::invalid_argument naming the column), so text order is
// time order (D8/D12). G2 needs the unique index on (condition_id, threshold): g2_index.h.
// trigger_timestamp, and a trigger watermark's last_timestamp, are epoch milliseconds (schema.md):
// every write (record_first, record_first_many, create; TriggerWatermarkRepository::update and
// advance) refuses, before any SQL, one that is not > 0 and of millisecond size or that is more
// than kMaxFutureMs (24 h) after now (not with FutureBound::CheckedOnArrival, the ingest writer's:
// its events were checked on arrival) (require_timestamp: TimestampUnitError naming the trigger or
// threshold, the value and the unit or the newest value accepted); a batch with one such value
// writes nothing.
// TriggerWatermarkRepository: `trigger_watermarks` keyed by REAL threshold, GREATEST upserts.
// Both have the base operations of storage-api.md 2.0 (get_by_id, exists, remove, count) on their
// real keys.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "repos/db_target.h"
#include "repos/models.h"
#include "repos/repo_support.h"
#include "repos/timestamp_unit.h"
#include "repos/write_result.h"

namespace pm {

enum class TriggerOutcome {
  Recorded,             // this trigger is the first for its condition and threshold
  DuplicateSameToken,   // (token_id, condition_id, threshold) was already recorded
  DuplicateOtherToken,  // another token of the same condition already holds the threshold (G2)
};

const char* to_string(TriggerOutcome outcome);

// The primary key of polymarket_first_triggers (after migration 02). The threshold is compared
// as a REAL (bound as $n::real), like every threshold here.
struct TriggerKey {
  std::string token_id;
  std::string condition_id;
  double threshold = 0;
};

class TriggerRepository {
 public:
  // `bound`: which clock the 24-h bound on trigger times counts from (FutureBound: the ingest
  // writer's triggers were checked on arrival).
  explicit TriggerRepository(DbTarget target, FutureBound bound = FutureBound::FromNow) : target_(target), bound_(bound) {}

  // The atomic G2 claim (record_first_many of one). `trigger.created_at` empty means now.
  // record_first, record_first_many and create throw RefusedValueError, recording nothing, for an
  // empty token_id or condition_id or a threshold that is not a finite number (the message names
  // which), and TimestampUnitError (also a RefusedValueError) for a trigger_timestamp refused as
  // above. Both are std::invalid_argument, and data errors (classify_exception: PgErrorKind::Data),
  // so the ingest writer dead-letters such an event instead of retrying its batch.
  TriggerOutcome record_first(const PolymarketFirstTrigger& trigger) const;

  // record_first for a whole batch in a few statements, with the same outcomes as calling it for
  // each trigger in order: within the batch the first trigger of a (condition_id, threshold) is
  // the one that may be recorded; the others are duplicates of it (or of the stored holder when
  // that one was refused). One INSERT .. SELECT FROM unnest(...) ON CONFLICT DO NOTHING does the
  // claims, so concurrency is as safe as record_first's. Outcomes are in input order.
  std::vector<TriggerOutcome> record_first_many(const std::vector<PolymarketFirstTrigger>& triggers) const;

  // Insert-or-ignore against both keys; says whether it inserted and returns the stored row for
  // the same (token_id, condition_id, threshold) (for a G2 duplicate: the other token's row).
  WriteResult<PolymarketFirstTrigger> create(const PolymarketFirstTrigger& trigger) const;

  bool has_triggered(const std::string& token_id, const std::string& condition_id, double threshold) const;
  bool has_condition_triggered(const std::string& condition_id, double threshold) const;
  // Read-only advice (true when neither key is taken). Acting on it races; use record_first().
  bool should_trigger(const std::string& token_id, const std::string& condition_id, double threshold) const;

  std::vector<PolymarketFirstTrigger> get_by_token(const std::string& token_id, int limit = 100) const;
  std::vector<PolymarketFirstTrigger> get_by_condition(const std::string& condition_id, int limit = 100) const;
  // trigger_timestamp >= since (epoch ms; 0 or less: every trigger), optionally one threshold;
  // newest first, no limit. A since > 0 that is not of millisecond size (seconds, which would
  // return every trigger, or microseconds) throws TimestampUnitError before any SQL (it was taken).
  std::vector<PolymarketFirstTrigger> get_recent(std::int64_t since_timestamp,
                                                 std::optional<double> threshold = std::nullopt) const;
  // storage-api.md 2.0 on this table's real key (the original's default `id` column does not
  // exist here, D19): the row of that key or nullopt; whether it exists (has_triggered); delete
  // it, true when a row was deleted (by affected rows, D20); the number of rows.
  std::optional<PolymarketFirstTrigger> get_by_id(const TriggerKey& key) const;
  bool exists(const TriggerKey& key) const;
  bool remove(const TriggerKey& key) const;
  std::int64_t count() const;

 private:
  DbTarget target_;
  FutureBound bound_;
};

// TriggerWatermarkRepository: `trigger_watermarks` (key threshold REAL, bound as $1::real, D7).
// The base operations of storage-api.md 2.0 come from BaseRepository on that key: get_by_id(t)
// (the same row as get), exists(t), remove(t) and count().
class TriggerWatermarkRepository : public BaseRepository<TriggerWatermark, double> {
 public:
  explicit TriggerWatermarkRepository(DbTarget target, FutureBound bound = FutureBound::FromNow)
      : BaseRepository(target, "trigger_watermarks", "threshold", "real"), bound_(bound) {}

  std::optional<TriggerWatermark> get(double threshold) const;
  // The stored last_timestamp (epoch ms), or 0 when there is no row.
  std::int64_t get_timestamp(double threshold) const;
  // GREATEST upsert: never moves backwards; updated_at always set to now. A timestamp refused as
  // above throws TimestampUnitError before any SQL.
  TriggerWatermark update(double threshold, std::int64_t timestamp) const;
  // Several thresholds in one statement: each row inserted or moved forward with the given
  // updated_at (canonical ISO-8601 text; empty: now; not a time: std::invalid_argument before any
  // SQL); a row that would not advance is left alone. Thresholds that are the same REAL
  // (0.95 and 0.9500000001) are one row: the newest of them goes. Returns the rows written. One
  // refused timestamp throws TimestampUnitError before any SQL: nothing is written.
  struct Advance {
    double threshold = 0;
    std::int64_t timestamp = 0;
    std::string updated_at;
  };
  std::size_t advance(std::span<const Advance> marks) const;

 private:
  FutureBound bound_;
};

}  // namespace pm

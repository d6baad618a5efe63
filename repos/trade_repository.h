#pragma once
// TradeRepository: `polymarket_trades` (key condition_id + trade_id), storage-api.md 2.1 with the
// defects fixed: create() says whether it inserted (D5), create_many() returns the rows really
// inserted (D1), and get_recent() computes its G1 cut-off in the configured timestamp unit (D10,
// D11), so a trade older than max_age_seconds is never returned, nor one more than kMaxFutureMs
// (24 h) ahead. Both bounds are computed when the query runs, inside the transaction: a body re-run
// after a lost connection reads the clock again.
// Every write (create, create_many, insert_rows, ingest_batch) refuses, before any SQL runs, a
// timestamp whose size does not fit the unit, microsecond and nanosecond values included, or that
// is more than kMaxFutureMs after now (not with FutureBound::CheckedOnArrival, the ingest writer's:
// its events were checked on arrival) (require_timestamp: TimestampUnitError naming the trade, the
// value and the unit or the newest value accepted); NULL timestamps are allowed. So do
// TradeWatermarkRepository::update and the watermark writes (advance_watermarks,
// watermark_statement) for the newest timestamp of each condition.
// The same trade writes refuse, before any SQL, a trade with an empty condition_id or trade_id
// (RefusedValueError naming the empty column and the other: the primary key takes '', and a later
// trade lacking the same column was dropped as a "duplicate" of it); a batch with one such trade
// writes nothing. TimestampUnitError is a RefusedValueError too: both are data errors
// (classify_exception), which the ingest writer dead-letters (its parser refuses such lines already).
// Runs on its own transactions or a caller's. Thread-safety is the target's (DbTarget).
// The bulk writes (insert_rows, create_many, ingest_batch) take one of two routes, fixed by the
// constructor, never looked up at run time:
// - in a transaction (on a Database, or a caller's pqxx::dbtransaction): binary COPY straight into
//   the table under a savepoint, with a staging table as the fallback when a concurrent writer
//   stored one of the keys;
// - in a caller's pqxx::nontransaction (autocommit): the keys looked up, then the rest in one text
//   COPY (still all or nothing per call; no staging table, which autocommit would empty).
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <pqxx/dbtransaction>
#include <pqxx/nontransaction>

#include "repos/db_target.h"
#include "repos/models.h"
#include "repos/owed_statements.h"
#include "repos/repo_support.h"
#include "repos/timestamp_unit.h"
#include "repos/trade_row.h"
#include "repos/util/clock.h"
#include "repos/write_result.h"

namespace pm {

// How ingest_batch finds the trades of a batch that are stored already.
enum class DuplicateProbe {
  OnConflict,  // COPY first; look the keys up only if the primary key refuses a row (rare duplicates)
  First,       // look the keys up first, then COPY the rest (frequent duplicates)
};

struct TradeBatchResult {
  std::size_t inserted = 0;              // rows new to the table (the rest were duplicates)
  std::size_t watermarks_advanced = 0;   // trade_watermarks rows inserted or moved forward
};

class TradeRepository {
 public:
  // On a Database the unit comes from its config; in a caller's transaction it is given. The
  // caller's tx must outlive the repository.
  explicit TradeRepository(Database& db);
  // The transaction route; `bound` says which clock the 24-h bound on timestamps counts from
  // (FutureBound: the ingest writer's rows were checked on arrival).
  TradeRepository(pqxx::dbtransaction& tx, TimestampUnit unit, FutureBound bound = FutureBound::FromNow);
  TradeRepository(pqxx::nontransaction& tx, TimestampUnit unit, FutureBound bound = FutureBound::FromNow);  // the autocommit route

  WriteResult<PolymarketTrade> create(const PolymarketTrade& trade) const;

  // Inserts the trades that are new (the first of equal keys in the input wins; keys already stored
  // are skipped) by COPY straight into the table, in one transaction; returns how many were
  // inserted. All or nothing: a row the server refuses fails the whole call. Empty input: 0, no SQL.
  std::size_t create_many(const std::vector<PolymarketTrade>& trades) const;

  // create_many plus trade_watermarks advanced (GREATEST) to the newest inserted timestamp per
  // condition, in the same transaction. The ingest writer's bulk path; `probe` only changes how
  // fast it is, never what it stores.
  TradeBatchResult ingest_batch(const std::vector<PolymarketTrade>& trades,
                                DuplicateProbe probe = DuplicateProbe::First) const;

  // ingest_batch in two steps on rows that view the caller's strings, for a writer that overlaps
  // batches: insert_rows stores the new rows (as create_many: the first of equal keys wins, keys
  // already stored are skipped) and returns their indices, ascending; advance_watermarks then moves
  // trade_watermarks (GREATEST) for rows[which] and returns how many watermark rows it inserted or
  // moved forward.
  std::vector<std::size_t> insert_rows(std::span<const TradeRow> rows,
                                       DuplicateProbe probe = DuplicateProbe::First) const;
  // `written_at_ms` (empty, or one per row, epoch ms): the updated_at to store (as ISO-8601 text),
  // that of the first row holding a condition's newest timestamp (the daemon gives each event's
  // arrival time, so a replay of its log writes the same rows); empty: now. Another size (one per
  // selected row, say), or an index of `which` that is not a row of `rows`, throws
  // std::invalid_argument before any SQL, as watermark_statement does (both were read past their
  // end).
  std::size_t advance_watermarks(std::span<const TradeRow> rows, std::span<const std::size_t> which,
                                 std::span<const std::int64_t> written_at_ms = {}) const;

  // The same two steps sparing round trips, for a writer on a caller's transaction (std::logic_error
  // on any other route). insert_rows sends what `owed` holds in front of its COPY and leaves the
  // RELEASE of its savepoint owed. watermark_statement is advance_watermarks' statement as SQL
  // text with its values inline (written_at_ms: one per row), for exec_together, whose affected
  // rows for it are what advance_watermarks would return; empty when it would write nothing.
  std::vector<std::size_t> insert_rows(std::span<const TradeRow> rows, DuplicateProbe probe,
                                       OwedStatements& owed) const;
  std::string watermark_statement(std::span<const TradeRow> rows, std::span<const std::size_t> which,
                                  std::span<const std::int64_t> written_at_ms) const;

  std::vector<PolymarketTrade> get_by_condition(const std::string& condition_id, int limit = 100) const;

  // G1: trades of the condition at most max_age_seconds old and at most kMaxFutureMs ahead (newest
  // first): a row another writer stored in the far future is never "recent". Timestamps are read
  // in the configured unit; a NULL timestamp is never "recent".
  std::vector<PolymarketTrade> get_recent(const std::string& condition_id,
                                          std::int64_t max_age_seconds = 300) const;
  // Same, with the clock given: read once per attempt, inside the transaction.
  std::vector<PolymarketTrade> get_recent(const std::string& condition_id, std::int64_t max_age_seconds,
                                          const EpochMsClock& now) const;
  // Same, with the time pinned (epoch ms).
  std::vector<PolymarketTrade> get_recent_at(const std::string& condition_id,
                                             std::int64_t max_age_seconds,
                                             std::int64_t now_epoch_ms) const;

  // The largest stored timestamp of the condition (SELECT max), in the unit the rows hold, or
  // nullopt when none of its trades has one: storage-api.md 2.1's contract (T18, T21), kept on
  // purpose. Unlike get_recent it applies no G1 bound: a row more than kMaxFutureMs ahead (written
  // by another writer; this library's writers refuse one) is returned as it is, and deleted rows
  // (dropped partitions) take the value back (docs/scale-out.md). It answers "what is stored", not
  // "what is new": for G1 use get_recent; to resume, read trade_watermarks.
  std::optional<std::int64_t> get_latest_timestamp(const std::string& condition_id) const;

  std::optional<PolymarketTrade> get(const std::string& condition_id, const std::string& trade_id) const;
  bool exists(const std::string& condition_id, const std::string& trade_id) const;
  bool remove(const std::string& condition_id, const std::string& trade_id) const;
  std::int64_t count() const;

  TimestampUnit unit() const { return unit_; }

 private:
  // Runs fn(tx) with the bulk route's transaction: a caller's nontransaction, a caller's
  // transaction, or a new pqxx::work per call on the Database.
  template <class Fn>
  auto bulk(Fn&& fn) const;

  std::int64_t newest_accepted() const { return pm::newest_accepted(bound_, unit_); }

  DbTarget target_;
  TimestampUnit unit_;
  FutureBound bound_ = FutureBound::FromNow;
  pqxx::dbtransaction* in_tx_ = nullptr;        // a caller's transaction, or null
  pqxx::nontransaction* autocommit_ = nullptr;  // a caller's nontransaction, or null
};

// TradeWatermarkRepository: `trade_watermarks` (key condition_id). The base operations of
// storage-api.md 2.0 come from BaseRepository on that key: get_by_id(cid) (the same row as get),
// exists(cid), remove(cid) (true when a row was deleted) and count().
class TradeWatermarkRepository : public BaseRepository<TradeWatermark, std::string> {
 public:
  // On a Database the timestamp unit comes from its config; in a caller's transaction it is given.
  explicit TradeWatermarkRepository(Database& db)
      : TradeWatermarkRepository(DbTarget(db), db.config().trade_timestamp_unit) {}
  TradeWatermarkRepository(DbTarget target, TimestampUnit unit)
      : BaseRepository(target, "trade_watermarks", "condition_id", "text"), unit_(unit) {}

  std::optional<TradeWatermark> get(const std::string& condition_id) const;
  // The stored last_timestamp, or 0 when there is no row.
  std::int64_t get_timestamp(const std::string& condition_id) const;
  // Upsert with last_timestamp = GREATEST(stored, timestamp): never moves backwards.
  // updated_at is set to now even when the timestamp does not advance. A timestamp whose size
  // does not fit the unit, or more than kMaxFutureMs after now, is refused before any SQL
  // (require_timestamp: TimestampUnitError): a watermark in the wrong unit would hide every later
  // trade, or none (D10), and one in the far future would hide every later trade for ever.
  TradeWatermark update(const std::string& condition_id, std::int64_t timestamp) const;

 private:
  TimestampUnit unit_;
};

}  // namespace pm

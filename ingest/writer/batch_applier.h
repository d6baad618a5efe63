#pragma once
// BatchApplier: applies a run of consecutive log events inside the caller's Transaction (a real
// one: the bulk route COPYs under a savepoint), through the repositories: trades by COPY with
// duplicates skipped and trade_watermarks advanced (GREATEST), triggers with the atomic G2 claim
// and trigger_watermarks advanced per threshold, and this instance's checkpoint moved to the end
// of the run. The caller commits; nothing here commits, retries or catches. Stateless apart from
// its settings; any thread.
// apply() is insert_trades() then finish(): a writer that overlaps batches runs the two steps
// apart (see WriterLanes), with finish() only after the previous batch committed.
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "repos/database.h"
#include "repos/owed_statements.h"

#include "ingest/events/event_queue.h"
#include "ingest/writer/ingest_checkpoint_repository.h"
#include "repos/trade_key_set.h"
#include "repos/trade_row.h"
#include "repos/timestamp_unit.h"
#include "repos/trade_repository.h"

namespace pm {

struct BatchCounts {
  std::size_t trades = 0;
  std::size_t trades_inserted = 0;
  std::size_t triggers = 0;
  std::size_t triggers_recorded = 0;
  std::size_t triggers_same_token = 0;
  std::size_t triggers_other_token = 0;
  std::size_t trade_watermarks = 0;
  std::size_t trigger_watermarks = 0;
  std::size_t dead_lettered = 0;     // events refused for good and stored as dead letters
  std::size_t dead_letter_rows = 0;  // of them, rows stored now (a letter of the same key kept: none)
  std::int64_t newest_event_ms = 0;
};

// What insert_trades leaves for finish.
struct TradeStage {
  std::size_t trades = 0;             // trade rows in the batch
  std::vector<std::size_t> inserted;  // indices of the rows stored, ascending
};

class BatchApplier {
 public:
  // `log_id`: the events' log, as wal::log_id_hex spells it (what the checkpoint and dead letters store).
  BatchApplier(std::string instance_id, std::string log_id, TimestampUnit unit)
      : instance_id_(std::move(instance_id)), log_id_(std::move(log_id)), unit_(unit) {}

  // `probe`: how to find already-stored trades (a speed choice; see TradeRepository).
  BatchCounts apply(pqxx::dbtransaction& tx, std::span<const QueuedEvent> events,
                    DuplicateProbe probe = DuplicateProbe::First) const;

  // The batch's trades as rows, in log order: views into `events`, which must outlive them.
  std::vector<TradeRow> trade_rows(std::span<const QueuedEvent> events) const;
  // Step one: the batch's trade rows into polymarket_trades. A row whose key is in one of
  // `in_flight` (the key sets of earlier batches not yet committed) is a duplicate of that earlier
  // trade and is left out. Takes no locks an earlier batch's finish() could wait on.
  // `owed` (optional): statements the transaction owes (OwedStatements), sent in front of the COPY;
  // the COPY's savepoint release is then left owed.
  TradeStage insert_trades(pqxx::dbtransaction& tx, std::span<const TradeRow> rows, DuplicateProbe probe,
                           std::span<const TradeKeySet* const> in_flight = {}, OwedStatements* owed = nullptr) const;
  // Step two: the triggers (G2 claims, in log order) and trigger watermarks, then the trade
  // watermarks for the inserted rows and the checkpoint, those two in one query with what `owed`
  // holds in front. `rows` and `stage` are the same batch's. `follows`: where the stored
  // checkpoint must be (IngestCheckpoint::follows; unset: anywhere before).
  BatchCounts finish(pqxx::dbtransaction& tx, std::span<const QueuedEvent> events, std::span<const TradeRow> rows,
                     const TradeStage& stage, OwedStatements* owed = nullptr,
                     std::optional<std::int64_t> follows = std::nullopt) const;

  // Stores `event` in pm_dead_letters (under this instance and log id) with the server's error and
  // moves the checkpoint past it (a letter of the same key stored before is kept: DeadLetterRepository).
  BatchCounts dead_letter(pqxx::dbtransaction& tx, const QueuedEvent& event, const std::string& error,
                          const std::string& sqlstate, std::optional<std::int64_t> follows = std::nullopt) const;

 private:
  // This instance's checkpoint just past `last`, covering `events` events, advancing from `follows`.
  IngestCheckpoint checkpoint_at(const QueuedEvent& last, std::size_t events, std::optional<std::int64_t> follows) const;
  void record_triggers(pqxx::dbtransaction& tx, std::span<const QueuedEvent> events, BatchCounts& counts) const;
  std::string instance_id_;
  std::string log_id_;
  TimestampUnit unit_;
};

}  // namespace pm

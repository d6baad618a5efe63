#pragma once
// BatchApplier: applies a run of consecutive log events inside the caller's transaction, through
// the repositories: trades by COPY with duplicates skipped and trade_watermarks advanced
// (GREATEST), triggers with the atomic G2 claim and trigger_watermarks advanced per threshold, and
// this instance's checkpoint moved to the end of the run. The caller commits; nothing here
// commits, retries or catches. Stateless apart from its settings; any thread.
#include <cstdint>
#include <span>
#include <string>

#include <pqxx/transaction_base>

#include "ingest/event_queue.h"
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
  std::size_t dead_lettered = 0;
  std::int64_t newest_event_ms = 0;
};

class BatchApplier {
 public:
  BatchApplier(std::string instance_id, std::string log_id, TimestampUnit unit)
      : instance_id_(std::move(instance_id)), log_id_(std::move(log_id)), unit_(unit) {}

  // `probe`: how to find already-stored trades (a speed choice; see TradeRepository).
  BatchCounts apply(pqxx::transaction_base& tx, std::span<const QueuedEvent> events,
                    DuplicateProbe probe = DuplicateProbe::First) const;

  // Stores `event` in pm_dead_letters with the server's error and moves the checkpoint past it.
  BatchCounts dead_letter(pqxx::transaction_base& tx, const QueuedEvent& event, const std::string& error,
                          const std::string& sqlstate) const;

 private:
  void save_checkpoint(pqxx::transaction_base& tx, const QueuedEvent& last, std::size_t events) const;
  std::string instance_id_;
  std::string log_id_;
  TimestampUnit unit_;
};

}  // namespace pm

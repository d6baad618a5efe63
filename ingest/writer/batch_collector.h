#pragma once
// BatchCollector: gathers the writer's next batch, the events that continue the log right after a
// given position, from the queue while it holds them and from the log files otherwise (start-up
// replay, queue overflow, a retry after a failure). It never skips an event: at a gap in the queue
// it reads the log.
//
// Contract:
// - next(after, lane_free): up to max_events consecutive events starting at lsn after.lsn + 1,
//   and no more once their record bytes (QueuedEvent::record_bytes) reach max_bytes: a batch
//   holds at most max_bytes plus one event (the first event of a batch always goes in), so the
//   batches in flight stay bounded in memory when lines are large.
//   Adaptive ("smart") batching: from the queue it takes whatever is queued, and then leaves at
//   once if lane_free() says a writer lane could take the batch now; only while every lane is
//   busy does it wait for more, woken by each arrival and by the doorbell a lane rings when it
//   finishes, for at most max_delay after the first event. So an idle writer sends each event
//   alone, a busy one sends large batches. From the log it takes what is durable at once. Empty
//   when nothing arrived within about 100 ms, or when the doorbell rang (a lane finished).
// - Events reach the queue once written to the log, before they are durable (event_queue.h); the
//   log is read only up to its durable end, so at a gap before the events in hand it first waits
//   for the missing records' sync (WriteAheadLog::wait_durable).
// - Damage in the log (a record that fails its checks, or does not decode) throws
//   wal::WalCorruption naming its file and offset, but only from a read that found nothing
//   before it: the intact events read before the damage are returned first (acknowledged events,
//   applied before the writer stops on the damage).
// - A halted log (a failed fdatasync; the daemon exits then, an embedder may not): once every
//   event the log made durable has been handed out, next() throws LogHalted, as nothing after them
//   can ever be applied (instead of waiting for a durability that never comes, or spinning on
//   events in hand behind a gap).
// - reset() forgets the events in hand and the open log reader (after a failure, or when the
//   checkpoint is read again): they are read again from the log when needed.
// - pm_ingest_log_catchup_events_total counts each LSN read from the log once: the same events
//   read again for a retried batch are not counted again.
// - Owned and called by the writer thread only; `stopping` ends a wait for more events early.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

#include "ingest/events/event_queue.h"
#include "ingest/log/wal.h"
#include "ingest/log/wal_reader.h"
#include "metrics/ingest_metrics.h"

namespace pm {

class LogHalted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class BatchCollector {
 public:
  BatchCollector(EventQueue& queue, wal::WriteAheadLog& log, IngestMetrics& metrics, std::size_t max_events,
                 std::uint64_t max_bytes, std::chrono::milliseconds max_delay, const std::atomic<bool>& stopping);

  std::vector<QueuedEvent> next(const wal::Position& after, const std::function<bool()>& lane_free);
  void reset();

 private:
  bool take_consecutive(std::vector<QueuedEvent>& batch, std::uint64_t& next_lsn);
  bool refill(std::chrono::microseconds timeout);
  void gather_more(std::vector<QueuedEvent>& batch, std::uint64_t next_lsn, const std::function<bool()>& lane_free);
  void read_from_log(std::vector<QueuedEvent>& batch, const wal::Position& after);
  // The next record up to `limit`, decoded (nullopt at the limit); damage throws wal::WalCorruption.
  std::optional<QueuedEvent> next_from_log(const wal::Position& limit);
  bool in_hand() const { return head_ < pending_.size(); }
  bool full(const std::vector<QueuedEvent>& batch) const { return batch.size() >= max_events_ || batch_bytes_ >= max_bytes_; }

  EventQueue& queue_;
  wal::WriteAheadLog& log_;
  IngestMetrics& metrics_;
  const std::size_t max_events_;
  const std::uint64_t max_bytes_;
  const std::chrono::milliseconds max_delay_;
  const std::atomic<bool>& stopping_;

  std::vector<QueuedEvent> pending_;  // popped from the queue, not yet in a batch
  std::uint64_t catchup_counted_to_lsn_ = 0;  // log_catchup_events counts events after this LSN only
  std::size_t head_ = 0;              // first of pending_ not yet taken
  std::uint64_t batch_bytes_ = 0;     // record bytes of the batch next() is gathering
  std::unique_ptr<wal::WalReader> reader_;
};

}  // namespace pm

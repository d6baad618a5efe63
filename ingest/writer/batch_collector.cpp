#include "ingest/writer/batch_collector.h"

#include <algorithm>
#include <string>

#include "ingest/events/event_codec.h"
#include "ingest/log/wal_corruption.h"

namespace pm {

BatchCollector::BatchCollector(EventQueue& queue, wal::WriteAheadLog& log, IngestMetrics& metrics,
                               std::size_t max_events, std::uint64_t max_bytes, std::chrono::milliseconds max_delay,
                               const std::atomic<bool>& stopping)
    : queue_(queue), log_(log), metrics_(metrics), max_events_(max_events), max_bytes_(max_bytes), max_delay_(max_delay),
      stopping_(stopping) {}

void BatchCollector::reset() {
  pending_.clear();
  head_ = 0;
  reader_.reset();
}

std::vector<QueuedEvent> BatchCollector::next(const wal::Position& after, const std::function<bool()>& lane_free) {
  std::vector<QueuedEvent> batch;
  batch.reserve(std::min(max_events_, std::max<std::size_t>(pending_.size() - head_, 1024)));
  std::uint64_t next_lsn = after.lsn + 1;
  batch_bytes_ = 0;
  if (log_.halted() && log_.durable().lsn < next_lsn)
    throw LogHalted("the log in " + log_.dir() + " has stopped (an fdatasync failed): every event it made durable, up to lsn " +
                    std::to_string(log_.durable().lsn) + ", is applied or in flight, and nothing after it ever will be");
  refill(std::chrono::microseconds(0));
  const bool contiguous = take_consecutive(batch, next_lsn);
  if (batch.empty()) {
    // A gap before the events in hand (after a reset, or a queue overflow): the missing records
    // were written before those, and may still be being synced; wait for that rather than spin.
    if (!contiguous && log_.durable().lsn < next_lsn) log_.wait_durable(next_lsn);
    if (log_.durable().lsn >= next_lsn && (!contiguous || !in_hand())) {
      // The next event is durable but not in hand (replay, queue overflow, or a retry).
      read_from_log(batch, after);
      return batch;
    }
    refill(std::chrono::milliseconds(100));
    take_consecutive(batch, next_lsn);
    if (batch.empty()) return batch;
  }
  gather_more(batch, next_lsn, lane_free);
  return batch;
}

// Takes events in hand while they continue the log without a gap; false at a gap.
bool BatchCollector::take_consecutive(std::vector<QueuedEvent>& batch, std::uint64_t& next_lsn) {
  // Room for all in hand at once, growing at least twofold (a batch can grow by a whole queue pop;
  // moving the events at each regrowth was a sixth of the writer thread's samples in an overloaded
  // paced run).
  const std::size_t need = std::min(max_events_, batch.size() + (pending_.size() - head_));
  if (need > batch.capacity()) batch.reserve(std::min(max_events_, std::max(need, 2 * batch.capacity())));
  while (in_hand() && !full(batch)) {
    QueuedEvent& q = pending_[head_];
    if (q.lsn < next_lsn) {  // applied already (queued before a retry read it from the log)
      ++head_;
      continue;
    }
    if (q.lsn > next_lsn) return false;
    batch_bytes_ += q.record_bytes;
    batch.push_back(std::move(q));
    ++head_;
    ++next_lsn;
  }
  return true;
}

// Pops more events when none are in hand; true when some are in hand afterwards.
bool BatchCollector::refill(std::chrono::microseconds timeout) {
  if (in_hand()) return true;
  pending_.clear();
  head_ = 0;
  return queue_.pop(pending_, max_events_, timeout) > 0;
}

// Takes what is queued; then, while no lane is free, waits for more, up to max_delay from now. A
// doorbell (a lane finished) ends a wait, so the batch leaves as soon as that lane is free.
void BatchCollector::gather_more(std::vector<QueuedEvent>& batch, std::uint64_t next_lsn,
                                 const std::function<bool()>& lane_free) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + max_delay_;
  while (!full(batch) && !stopping_) {
    if (refill(std::chrono::microseconds(0))) {  // what is queued already goes in any case
      if (!take_consecutive(batch, next_lsn)) return;
      continue;
    }
    if (lane_free()) return;
    const auto now = Clock::now();
    if (now >= deadline) return;
    if (refill(std::chrono::duration_cast<std::chrono::microseconds>(deadline - now)) &&
        !take_consecutive(batch, next_lsn))
      return;
  }
}

void BatchCollector::read_from_log(std::vector<QueuedEvent>& batch, const wal::Position& after) {
  if (!reader_ || reader_->position().lsn != after.lsn)
    reader_ = std::make_unique<wal::WalReader>(log_.dir(), log_.log_id(), after, log_.fs());
  const wal::Position limit = log_.durable();
  batch.reserve(std::min<std::uint64_t>(max_events_, limit.lsn - std::min(limit.lsn, after.lsn)));
  while (!full(batch)) {
    std::optional<QueuedEvent> q;
    try {
      q = next_from_log(limit);
    } catch (const wal::WalCorruption&) {
      // The intact events read before the damage are acknowledged ones: they go first. The next
      // read, from their end, meets the damage with nothing before it, and throws.
      if (batch.empty()) throw;
      reader_.reset();
      break;
    }
    if (!q) break;
    batch_bytes_ += q->record_bytes;
    batch.push_back(std::move(*q));
  }
  // Each LSN once: a batch read again after a failure (reset()) was counted when first read.
  if (!batch.empty() && batch.back().lsn > catchup_counted_to_lsn_) {
    const std::uint64_t first = std::max(batch.front().lsn, catchup_counted_to_lsn_ + 1);
    metrics_.log_catchup_events.Increment(static_cast<double>(batch.back().lsn - first + 1));
    catchup_counted_to_lsn_ = batch.back().lsn;
  }
}

std::optional<QueuedEvent> BatchCollector::next_from_log(const wal::Position& limit) {
  std::optional<wal::Record> record = reader_->next(limit);
  if (!record) return std::nullopt;
  std::string error;
  std::optional<Event> event = decode_event(record->payload, &error);
  if (!event)
    throw wal::WalCorruption(log_.dir() + "/" + wal::segment_file_name(record->start.segment), record->start.offset,
                             "record " + std::to_string(record->lsn) + " does not decode: " + error);
  return queued_from_record(*record, std::move(*event));
}

}  // namespace pm

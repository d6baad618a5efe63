#pragma once
// EventQueue: the bounded hand-off from the log's group commits to the writer thread, over a
// moodycamel::ConcurrentQueue, with a doorbell the writer waits on when the queue is empty. Events
// are pushed once written to the log, while its fdatasync runs (the writer's COMMIT waits for
// their durability: WriteAheadLog::wait_durable), in LSN order, by whichever thread leads the
// log's group commit (the log serialises those, so one producer token serves them all); one
// writer thread pops. When the queue is full the events are simply not queued: they are in the
// log, and the writer reads them back (once durable) when it sees the gap. So memory stays
// bounded whatever the backlog: at most `capacity` events and `max_bytes` bytes of their log
// records (an event's size in memory follows its record: the line it came from, kept as raw_json,
// and its fields), whichever is reached first.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

#include <concurrentqueue/concurrentqueue.h>

#include "ingest/events/event.h"
#include "ingest/log/wal_format.h"

namespace pm {
namespace wal {
struct Record;  // wal_reader.h
}

struct QueuedEvent {
  std::uint64_t lsn = 0;
  wal::Position end;  // the log boundary after this event: its checkpoint once applied
  Event event;
  // The record as the log holds it, for a checkpoint to name (seed/07_checkpoint_record.sql): its
  // bytes in the log, header included (0: not known), and the CRC-32C of its payload.
  std::uint32_t record_bytes = 0;
  std::uint32_t payload_crc = 0;
};

// The QueuedEvent of a record read back from the log or an archive, with its size and payload CRC.
QueuedEvent queued_from_record(const wal::Record& record, Event event);

class EventQueue {
 public:
  // Memory for at most 32,768 events is taken at once; beyond, as the queue fills (and kept).
  explicit EventQueue(std::size_t capacity, std::uint64_t max_bytes = UINT64_MAX);

  // Producer side (serialised by the log's group leader). Returns how many were queued: all of
  // `events` or none (a partial push would put a gap in the middle of the queue).
  std::size_t push(std::vector<QueuedEvent>& events);

  // Consumer side (the writer thread only): appends up to `max` events to `out`, waiting up to
  // `timeout` for the first one, or until wake_consumer() is called. Returns how many were
  // appended (0 after a timeout or a wake-up).
  std::size_t pop(std::vector<QueuedEvent>& out, std::size_t max, std::chrono::microseconds timeout);

  std::size_t size() const { return size_.load(std::memory_order_relaxed); }
  // The queued events' record bytes (QueuedEvent::record_bytes).
  std::uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
  std::size_t capacity() const { return capacity_; }
  // Consumers blocked in pop() right now (0 or 1): for tests that must ring while one waits.
  int waiting() const { return waiting_.load(); }
  // Rings the consumer's doorbell (at shutdown, and when a writer lane finishes a batch): a pop()
  // waiting now returns at once, or else the next pop() that would wait does. Queues nothing.
  // Any thread.
  void wake_consumer();

 private:
  const std::size_t capacity_;
  const std::uint64_t max_bytes_;
  moodycamel::ConcurrentQueue<QueuedEvent> queue_;
  moodycamel::ProducerToken producer_;
  std::atomic<std::size_t> size_{0};
  std::atomic<std::uint64_t> bytes_{0};
  std::mutex bell_mu_;
  std::condition_variable bell_;
  bool rung_ = false;  // guarded by bell_mu_
  std::atomic<int> waiting_{0};  // set under bell_mu_ before the wait releases it
};

}  // namespace pm

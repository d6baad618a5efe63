#pragma once
// EventQueue: the bounded hand-off from the log's group commits to the writer thread, over a
// moodycamel::BlockingConcurrentQueue. Events are pushed only after they are durable, in LSN
// order, by whichever thread leads the log's group commit (the log serialises those, so one
// producer token serves them all); one writer thread pops. When the queue is full the events are
// simply not queued: they are on disk, and the writer reads them back from the log when it sees
// the gap. So memory stays bounded whatever the backlog.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <vector>

#include <concurrentqueue/blockingconcurrentqueue.h>

#include "ingest/event.h"
#include "ingest/wal_format.h"

namespace pm {

struct QueuedEvent {
  std::uint64_t lsn = 0;
  wal::Position end;  // the log boundary after this event: its checkpoint once applied
  Event event;
};

class EventQueue {
 public:
  explicit EventQueue(std::size_t capacity);

  // Producer side (serialised by the log's group leader). Returns how many were queued: all of
  // `events` or none (a partial push would put a gap in the middle of the queue).
  std::size_t push(std::vector<QueuedEvent>& events);

  // Consumer side (the writer thread only): appends up to `max` events to `out`, waiting up to
  // `timeout` for the first one. Returns how many were appended.
  std::size_t pop(std::vector<QueuedEvent>& out, std::size_t max, std::chrono::microseconds timeout);

  std::size_t size() const { return size_.load(std::memory_order_relaxed); }
  std::size_t capacity() const { return capacity_; }
  // Wakes a consumer blocked in pop() (at shutdown, and when a writer lane finishes a batch) by
  // queueing an event with lsn 0, which the writer drops like any event at or below its applied
  // position. Any thread; the sentinel counts in size() until it is popped.
  void wake();

 private:
  const std::size_t capacity_;
  moodycamel::BlockingConcurrentQueue<QueuedEvent> queue_;
  moodycamel::ProducerToken producer_;
  std::atomic<std::size_t> size_{0};
};

}  // namespace pm

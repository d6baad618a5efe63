#include "ingest/events/event_queue.h"

#include <algorithm>
#include <iterator>

#include "ingest/log/wal_reader.h"
#include "repos/util/crc32c.h"

namespace pm {

QueuedEvent queued_from_record(const wal::Record& record, Event event) {
  return QueuedEvent{record.lsn, record.end, std::move(event),
                     static_cast<std::uint32_t>(record.end.offset - record.start.offset),
                     crc32c::value(record.payload.data(), record.payload.size())};
}

// The queue's first blocks: room for the default bound, not for any bound given. Built for
// `capacity` (up to 100,000,000 events of ~300 bytes each) it took gigabytes at start, whatever
// --queue-max-bytes allowed; enqueue_bulk allocates further blocks as a backlog needs them, and
// the queue keeps them for reuse.
constexpr std::size_t kPreallocatedEvents = 32768;

EventQueue::EventQueue(std::size_t capacity, std::uint64_t max_bytes)
    : capacity_(capacity),
      max_bytes_(max_bytes),
      queue_(std::min(capacity, kPreallocatedEvents)),
      producer_(queue_) {}

namespace {

std::uint64_t record_bytes_of(const QueuedEvent* first, std::size_t n) {
  std::uint64_t bytes = 0;
  for (std::size_t i = 0; i < n; ++i) bytes += first[i].record_bytes;
  return bytes;
}

}  // namespace

std::size_t EventQueue::push(std::vector<QueuedEvent>& events) {
  if (events.empty() || size_.load(std::memory_order_relaxed) + events.size() > capacity_) return 0;
  const std::uint64_t bytes = record_bytes_of(events.data(), events.size());
  if (bytes > max_bytes_ - std::min(max_bytes_, bytes_.load(std::memory_order_relaxed))) return 0;
  bytes_.fetch_add(bytes, std::memory_order_relaxed);  // before the consumer can pop and subtract them
  if (!queue_.enqueue_bulk(producer_, std::make_move_iterator(events.begin()), events.size())) {
    bytes_.fetch_sub(bytes, std::memory_order_relaxed);
    return 0;
  }
  size_.fetch_add(events.size(), std::memory_order_relaxed);
  {
    std::lock_guard lock(bell_mu_);  // a consumer between its check and its wait sees the new size
  }
  bell_.notify_one();
  return events.size();
}

std::size_t EventQueue::pop(std::vector<QueuedEvent>& out, std::size_t max, std::chrono::microseconds timeout) {
  const std::size_t before = out.size();
  // back_inserter: only the events dequeued are constructed, not `max` placeholders.
  std::size_t n = queue_.try_dequeue_bulk(std::back_inserter(out), max);
  if (n == 0 && timeout.count() > 0) {
    {
      std::unique_lock lock(bell_mu_);
      ++waiting_;
      bell_.wait_for(lock, timeout, [&] { return rung_ || size_.load(std::memory_order_relaxed) > 0; });
      --waiting_;
      rung_ = false;
    }
    n = queue_.try_dequeue_bulk(std::back_inserter(out), max);
  }
  size_.fetch_sub(n, std::memory_order_relaxed);
  bytes_.fetch_sub(record_bytes_of(out.data() + before, n), std::memory_order_relaxed);
  return n;
}

void EventQueue::wake_consumer() {
  {
    std::lock_guard lock(bell_mu_);
    rung_ = true;
  }
  bell_.notify_all();
}

}  // namespace pm

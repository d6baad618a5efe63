#pragma once
// IngestPipeline: what a connection does with the valid events of a chunk of lines: check the
// disk budget, encode them, append them to the log in one group-committed call, and, once they
// are written (before the log's fdatasync; the writer commits nothing before they are durable),
// hand them to the writer's queue (or leave them on disk when the queue is full).
// submit() returns only when the events are durable or definitely not stored, which is what lets
// the connection ack or answer `busy`. Thread-safe: every connection thread calls it.
#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "ingest/events/event.h"
#include "ingest/events/event_queue.h"
#include "ingest/log/wal.h"
#include "metrics/ingest_metrics.h"

namespace pm {

enum class SubmitResult { Durable, OverBudget, DiskFull, IoError, ShuttingDown };
const char* to_string(SubmitResult result);

class IngestPipeline {
 public:
  // `applied_log_offset` tells where the budget counts from: how far the writer has applied, or the
  // start of an applied segment still waiting for the archive.
  IngestPipeline(std::uint64_t wal_max_bytes, wal::WriteAheadLog& log, EventQueue& queue, IngestMetrics& metrics,
                 std::function<std::uint64_t()> applied_log_offset);

  // Moves the events out of `events` on success.
  SubmitResult submit(std::vector<Event>& events);
  // Frees the encoding buffers submit() keeps on the calling thread between chunks (up to ~1 MiB):
  // its connection is idle.
  static void release_thread_buffers();

  // Durable log bytes counted against wal_max_bytes: from applied_log_offset to the durable end.
  std::uint64_t budget_used_bytes() const;
  std::uint64_t wal_max_bytes() const { return wal_max_bytes_; }
  // After this, submit() answers ShuttingDown without touching the log.
  void close() { closed_ = true; }

 private:
  const std::uint64_t wal_max_bytes_;
  wal::WriteAheadLog& log_;
  EventQueue& queue_;
  IngestMetrics& metrics_;
  std::function<std::uint64_t()> applied_log_offset_;
  std::atomic<bool> closed_{false};
};

}  // namespace pm

#include "ingest/server/ingest_pipeline.h"

#include "ingest/events/event_codec.h"
#include "ingest/server/kept_buffers.h"
#include "repos/util/crc32c.h"

#include <chrono>

namespace pm {

const char* to_string(SubmitResult result) {
  switch (result) {
    case SubmitResult::Durable: return "durable";
    case SubmitResult::OverBudget: return "over_budget";
    case SubmitResult::DiskFull: return "disk_full";
    case SubmitResult::IoError: return "io_error";
    case SubmitResult::ShuttingDown: return "shutting_down";
  }
  return "io_error";
}

IngestPipeline::IngestPipeline(std::uint64_t wal_max_bytes, wal::WriteAheadLog& log, EventQueue& queue,
                               IngestMetrics& metrics, std::function<std::uint64_t()> applied_log_offset)
    : wal_max_bytes_(wal_max_bytes),
      log_(log),
      queue_(queue),
      metrics_(metrics),
      applied_log_offset_(std::move(applied_log_offset)) {}

std::uint64_t IngestPipeline::budget_used_bytes() const {
  const std::uint64_t durable = log_.durable().log_offset;
  const std::uint64_t applied = applied_log_offset_();
  return durable > applied ? durable - applied : 0;
}

namespace {

// The calling connection thread's encoding buffers (submit()).
thread_local std::vector<std::string> thread_payloads;
thread_local std::vector<std::uint32_t> thread_payload_crcs;

// A connection's thread keeps its encoding buffers between chunks, so that ordinary chunks (a full
// 256 KiB read encodes to less than 1 MiB) reuse them. A payload over 64 KiB (a large event,
// up to --max-line-bytes) is freed, and all of them past kKeptBufferElements or 1 MiB in all (the
// thousands of events of one array line), or every idle connection that once sent one would keep it.
// What is kept is freed once the connection is idle (release_thread_buffers()).
void release_large_payload_buffers(std::vector<std::string>& payloads, std::vector<std::uint32_t>& payload_crcs) {
  constexpr std::size_t kKeptPayloadCapacity = 64 * 1024;
  constexpr std::size_t kKeptPayloadBytes = 1 << 20;
  std::size_t kept = 0;
  for (std::string& p : payloads) {
    if (p.capacity() <= kKeptPayloadCapacity) {
      kept += p.capacity();
      continue;
    }
    note_released(p.capacity());
    std::string().swap(p);
  }
  if (kept <= kKeptPayloadBytes && payloads.capacity() <= kKeptBufferElements) return;
  note_released(kept + payloads.capacity() * sizeof(std::string));
  std::vector<std::string>().swap(payloads);
  std::vector<std::uint32_t>().swap(payload_crcs);
}

}  // namespace

void IngestPipeline::release_thread_buffers() {
  std::size_t bytes = thread_payloads.capacity() * sizeof(std::string) + thread_payload_crcs.capacity() * sizeof(std::uint32_t);
  for (const std::string& p : thread_payloads) bytes += p.capacity();
  if (bytes == 0) return;
  note_released(bytes);
  std::vector<std::string>().swap(thread_payloads);
  std::vector<std::uint32_t>().swap(thread_payload_crcs);
}

SubmitResult IngestPipeline::submit(std::vector<Event>& events) {
  if (events.empty()) return SubmitResult::Durable;
  if (closed_) return SubmitResult::ShuttingDown;
  std::vector<std::string>& payloads = thread_payloads;
  std::vector<std::uint32_t>& payload_crcs = thread_payload_crcs;
  payloads.resize(events.size());
  payload_crcs.resize(events.size());
  std::uint64_t incoming = 0;
  for (std::size_t i = 0; i < events.size(); ++i) {
    payloads[i].clear();
    encode_event(events[i], payloads[i]);
    payload_crcs[i] = crc32c::value(payloads[i].data(), payloads[i].size());
    incoming += wal::kRecordHeaderSize + payloads[i].size();
  }
  // Over budget unless nothing counts against it: a chunk larger than the whole budget is taken
  // then (overshooting by at most one chunk per connection), or it would be `busy` forever.
  if (const std::uint64_t used = budget_used_bytes(); used > 0 && used + incoming > wal_max_bytes_) {
    release_large_payload_buffers(payloads, payload_crcs);
    return SubmitResult::OverBudget;
  }

  const auto submitted = std::chrono::steady_clock::now();
  std::vector<wal::Appended> appended;
  // The callback runs on the log's leading thread: it reads this thread's buffers through these.
  const std::vector<std::string>& record_payloads = payloads;
  const std::vector<std::uint32_t>& record_crcs = payload_crcs;
  bool left_in_log = false;  // not queued: the writer reads them back from the log once durable
  // Queued once written, before the log's fdatasync: the writer starts their batch meanwhile and
  // commits it only once they are durable (WriteAheadLog::wait_durable).
  const wal::WrittenCallback on_written = [&](std::span<const wal::Appended> records) {
    std::vector<QueuedEvent> queued;
    queued.reserve(records.size());
    for (std::size_t i = 0; i < records.size(); ++i)
      queued.push_back(QueuedEvent{records[i].lsn, records[i].end, std::move(events[i]),
                                   static_cast<std::uint32_t>(wal::kRecordHeaderSize + record_payloads[i].size()),
                                   record_crcs[i]});
    if (queue_.push(queued) == 0) {
      metrics_.queue_overflow_events.Increment(static_cast<double>(queued.size()));
      left_in_log = true;
    }
  };
  const auto status = log_.append(std::span<const std::string>(payloads.data(), events.size()), appended, on_written);
  // A group refused by the queue's byte bound while the queue is empty rings no doorbell: the idle
  // writer would sleep out its wait (100 ms) before it reads them from the log.
  if (left_in_log && status == wal::AppendStatus::Ok) queue_.wake_consumer();
  release_large_payload_buffers(payloads, payload_crcs);
  switch (status) {
    case wal::AppendStatus::Ok:
      metrics_.durable_wait_seconds.Observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - submitted).count());
      events.clear();
      return SubmitResult::Durable;
    case wal::AppendStatus::DiskFull: metrics_.wal_write_errors("disk_full").Increment(); return SubmitResult::DiskFull;
    case wal::AppendStatus::IoError: metrics_.wal_write_errors("io_error").Increment(); return SubmitResult::IoError;
  }
  return SubmitResult::IoError;
}

}  // namespace pm

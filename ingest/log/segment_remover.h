#pragma once
// SegmentRemover: deletes the log's applied segments on a thread of its own (pm-remover), for the
// writer's retention (RetentionConfig::release_before) when no archive takes them. Deleting a
// 64 MiB segment took 17-41 ms on this machine's ext4 (its cached pages dropped, its blocks
// freed); on the writer thread that stalled the hand-over of batches to the lanes once per
// segment, about once a second at 60,000 events/s.
//
// Contract:
// - release_before(segment): any thread; returns at once. The thread then calls
//   WriteAheadLog::remove_segments_before with the highest segment asked for so far, which
//   persists the applied position first and keeps whatever may not go yet. The log allows that
//   call from a thread of its own while the writer thread uses the log. A segment asked for
//   again is tried again when its last removal left segments below it (the log refused: its
//   applied position was held back, as after the writer's reconnect; or the removal threw).
// - wait_idle(): returns once every removal asked for before the call is done.
// - What the removal throws (it reports ordinary failures through the log's own on_warning) goes
//   to `on_error`; the next request tries again.
// - The destructor finishes the removal asked for (if any), then joins. The log must outlive it.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "ingest/log/wal.h"

namespace pm::wal {

class SegmentRemover {
 public:
  SegmentRemover(WriteAheadLog& log, std::function<void(const std::string&)> on_error);
  ~SegmentRemover();
  SegmentRemover(const SegmentRemover&) = delete;
  SegmentRemover& operator=(const SegmentRemover&) = delete;

  void release_before(std::uint64_t segment);
  void wait_idle();

 private:
  void run();

  WriteAheadLog& log_;
  const std::function<void(const std::string&)> on_error_;
  std::mutex mu_;
  std::condition_variable changed_;
  // Guarded by mu_:
  std::uint64_t asked_ = 0;     // the highest segment asked for
  std::uint64_t requests_ = 0;  // asks taken (a new highest segment, or one to try again)
  std::uint64_t started_ = 0;   // requests_ when the last removal started
  std::uint64_t finished_ = 0;  // requests_ when the last finished removal started
  bool incomplete_ = false;     // the last finished removal left segments below asked_
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace pm::wal

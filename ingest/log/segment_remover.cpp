#include "ingest/log/segment_remover.h"

#include <algorithm>
#include <exception>

#include "repos/util/thread_name.h"

namespace pm::wal {

SegmentRemover::SegmentRemover(WriteAheadLog& log, std::function<void(const std::string&)> on_error)
    : log_(log), on_error_(std::move(on_error)), thread_([this] { run(); }) {}

SegmentRemover::~SegmentRemover() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void SegmentRemover::release_before(std::uint64_t segment) {
  {
    std::lock_guard lock(mu_);
    if (segment < asked_ || (segment == asked_ && !incomplete_)) return;
    asked_ = segment;
    incomplete_ = false;
    ++requests_;
  }
  changed_.notify_all();
}

void SegmentRemover::wait_idle() {
  std::unique_lock lock(mu_);
  const std::uint64_t target = requests_;
  changed_.wait(lock, [&] { return finished_ >= target; });
}

void SegmentRemover::run() {
  name_this_thread("pm-remover");
  std::unique_lock lock(mu_);
  for (;;) {
    changed_.wait(lock, [&] { return stopping_ || requests_ > started_; });
    if (requests_ == started_) return;  // stopping, and nothing is left to remove
    started_ = requests_;
    const std::uint64_t request = requests_;
    const std::uint64_t segment = asked_;
    lock.unlock();
    bool complete = false;
    try {
      log_.remove_segments_before(segment);  // reports its own failures (Options::on_warning)
      // Never the active segment: below it (or below `segment`) nothing may be left.
      complete = log_.oldest().segment >= std::min(segment, log_.durable().segment);
    } catch (const std::exception& e) {
      on_error_(std::string("removing applied log segments failed: ") + e.what());
    }
    lock.lock();
    finished_ = request;
    if (segment == asked_) incomplete_ = !complete;
    changed_.notify_all();
  }
}

}  // namespace pm::wal

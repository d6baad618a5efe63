#include "ingest/log/segment_remover.h"

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
    if (segment <= asked_) return;
    asked_ = segment;
  }
  changed_.notify_all();
}

void SegmentRemover::wait_idle() {
  std::unique_lock lock(mu_);
  const std::uint64_t target = asked_;
  changed_.wait(lock, [&] { return done_ >= target; });
}

void SegmentRemover::run() {
  name_this_thread("pm-remover");
  std::unique_lock lock(mu_);
  for (;;) {
    changed_.wait(lock, [&] { return stopping_ || asked_ > done_; });
    if (asked_ == done_) return;  // stopping, and nothing is left to remove
    const std::uint64_t segment = asked_;
    lock.unlock();
    try {
      log_.remove_segments_before(segment);  // reports its own failures (Options::on_warning)
    } catch (const std::exception& e) {
      on_error_(std::string("removing applied log segments failed: ") + e.what());
    }
    lock.lock();
    done_ = segment;
    changed_.notify_all();
  }
}

}  // namespace pm::wal

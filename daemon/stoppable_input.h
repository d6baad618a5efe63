#pragma once
// Reading an input that may stay quiet for hours (a pipe behind `tail -F`) without missing a
// reason to stop reading it.
//
// InputStop is that reason's signal: stop() from any thread (pm-ingestctl send's client I/O
// thread, at its first give-up) wakes every read waiting on it, at once.
//
// FdReadBuf is a std::streambuf over one file descriptor (not owned) whose reads wait in poll(2)
// on the descriptor and on the stop together. Once stopped it reads nothing more and reports the
// end of the input (InputStop::stopped() tells the two apart; a line cut short by the stop comes
// back as the last one, so a reader checks stopped() before using it). A read error throws
// std::system_error, which std::istream turns into badbit. One thread reads one FdReadBuf.
#include <array>
#include <atomic>
#include <streambuf>

namespace pm::ctl {

class InputStop {
 public:
  InputStop();  // throws std::system_error when no eventfd can be made
  ~InputStop();
  InputStop(const InputStop&) = delete;
  InputStop& operator=(const InputStop&) = delete;

  void stop();  // any thread, any number of times
  bool stopped() const { return stopped_.load(std::memory_order_acquire); }
  int wake_fd() const { return fd_; }  // readable once stopped

 private:
  int fd_;
  std::atomic<bool> stopped_{false};
};

class FdReadBuf : public std::streambuf {
 public:
  FdReadBuf(int fd, const InputStop& stop) : fd_(fd), stop_(stop) {}

 protected:
  int_type underflow() override;

 private:
  // Waits until the descriptor is readable or the stop comes; false at the stop.
  bool wait_readable();
  int fd_;
  const InputStop& stop_;
  std::array<char, 64 * 1024> buffer_{};
};

}  // namespace pm::ctl

#pragma once
// RefusingOpenFs: a LogFs that, while told to, refuses to open log segments for reading with an
// errno (EACCES: what a permission does to a process that is not root), and otherwise passes every
// call on. As root chmod stops no read, so this seam stands in for a segment the system will not
// let the daemon open, for a while, and then will. It can refuse every open, or only every n-th
// (EMFILE coming and going: a reader that opens a segment twice gets the first open, not the
// second). Thread-safe.
#include <atomic>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include "ingest/log/log_fs.h"
#include "tests/support/forwarding_log_fs.h"

namespace pm::test {

class RefusingOpenFs : public wal::ForwardingLogFs {
 public:
  // Refuses read opens of paths that contain `refused_path_part` (".wal": every segment).
  explicit RefusingOpenFs(wal::LogFs& inner, std::string refused_path_part = ".wal")
      : ForwardingLogFs(inner), part_(std::move(refused_path_part)) {}

  std::error_code open(const std::string& path, wal::OpenMode mode, std::unique_ptr<wal::LogFile>& out) override {
    const int error = error_.load();
    if (error != 0 && mode == wal::OpenMode::Read && path.find(part_) != std::string::npos && ++seen_ % every_.load() == 0) {
      ++refused_;
      return wal::errno_code(error);
    }
    return ForwardingLogFs::open(path, mode, out);
  }

  // From now on, of the read opens of matching paths, refuses the `every`-th, 2 x `every`-th, ...
  // (1: all of them) with `error`.
  void refuse(int error, int every = 1) {
    error_ = 0;
    seen_ = 0;
    every_ = every;
    error_ = error;
  }
  void allow() { error_ = 0; }
  // The opens refused so far.
  int refused() const { return refused_.load(); }

 private:
  const std::string part_;
  std::atomic<int> error_{0};
  std::atomic<int> every_{1};
  std::atomic<int> seen_{0};  // matching read opens since refuse()
  std::atomic<int> refused_{0};
};

}  // namespace pm::test

#pragma once
// ReplayProgress: how `pm-ingestctl replay` shows its progress on stderr: on a terminal, one line
// redrawn in place (a bar, the rate, the time left), at most 5 times a second; otherwise a plain
// line every 2 seconds, for logs. Main thread only.
#include <chrono>
#include <ostream>

#include "ingest/replay/replay_runner.h"

namespace pm::ctl {

class ReplayProgress {
 public:
  ReplayProgress(std::ostream& out, bool terminal) : out_(out), terminal_(terminal) {}
  void update(const ReplayStats& stats);
  void finish(const ReplayStats& stats);  // the last figures; ends the terminal line

 private:
  std::ostream& out_;
  const bool terminal_;
  std::chrono::steady_clock::time_point last_{};
  bool drawn_ = false;
};

// "1:02:03", "4:05" for a number of seconds.
std::string format_duration(double seconds);

}  // namespace pm::ctl

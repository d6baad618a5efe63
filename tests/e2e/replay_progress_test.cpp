// How `pm-ingestctl replay` shows progress: a bar redrawn in place with the rate and the time left
// on a terminal, plain lines otherwise.
#include <gtest/gtest.h>

#include <sstream>

#include "daemon/replay_progress.h"

namespace pm::ctl {
namespace {

ReplayStats halfway() {
  ReplayStats s;
  s.read = 50'000;
  s.applied = 40'000;
  s.bytes_done = 500;
  s.total_bytes = 1000;
  s.seconds = 10;
  return s;
}

TEST(ReplayProgress, OnATerminalOneLineIsRedrawnWithABarTheRateAndTheTimeLeft) {
  std::ostringstream out;
  ReplayProgress progress(out, /*terminal=*/true);
  progress.update(halfway());
  const std::string line = out.str();
  EXPECT_EQ(line.rfind("\r[###############---------------]  50%", 0), 0u) << line;
  EXPECT_NE(line.find("50000 events"), std::string::npos) << line;
  EXPECT_NE(line.find("5000 events/s"), std::string::npos) << line;
  EXPECT_NE(line.find("0:10 left"), std::string::npos) << line;
  EXPECT_EQ(line.find('\n'), std::string::npos) << "redrawn in place, no newline";
  ReplayStats done = halfway();
  done.bytes_done = done.total_bytes;
  progress.finish(done);
  EXPECT_NE(out.str().find("100%"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("0:00 left"), std::string::npos) << out.str();
  EXPECT_EQ(out.str().back(), '\n') << "the terminal line ends at the finish";
}

TEST(ReplayProgress, ElsewherePlainLinesWithoutControlCharacters) {
  std::ostringstream out;
  ReplayProgress progress(out, /*terminal=*/false);
  progress.update(halfway());
  progress.update(halfway());  // within 2 s of the last line: not printed again
  const std::string text = out.str();
  EXPECT_EQ(text, "replay: 50% of the sources read, 50000 events read, 40000 applied, 5000 events/s, 0:10 left\n");
  EXPECT_EQ(text.find('\r'), std::string::npos);
}

TEST(ReplayProgress, DurationsReadAsClockTimes) {
  EXPECT_EQ(format_duration(0), "0:00");
  EXPECT_EQ(format_duration(65), "1:05");
  EXPECT_EQ(format_duration(3723), "1:02:03");
}

}  // namespace
}  // namespace pm::ctl

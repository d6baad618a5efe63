// RetryPacing: the writer's waits after failures (ingest/writer/retry_pacing.h). Each wait is
// drawn between half its base and the base; the base doubles from 100 ms up to 5 s.
#include "ingest/writer/retry_pacing.h"

#include <gtest/gtest.h>

namespace pm {
namespace {

using std::chrono::milliseconds;

RetryPacing pacing() { return RetryPacing(milliseconds(100), milliseconds(5000)); }

TEST(RetryPacing, EveryFailureWaitsLongerUpToTheMaximumWhileNothingCommits) {
  RetryPacing p = pacing();
  EXPECT_LE(p.after_failure(false), milliseconds(100));
  EXPECT_GE(p.after_failure(false), milliseconds(100));  // base 200
  EXPECT_GE(p.after_failure(false), milliseconds(200));  // base 400
  for (int i = 0; i < 10; ++i) p.after_failure(false);
  const milliseconds late = p.after_failure(false);
  EXPECT_GE(late, milliseconds(2500));
  EXPECT_LE(late, milliseconds(5000));
}

TEST(RetryPacing, ACommitStartsTheWaitsAfresh) {
  RetryPacing p = pacing();
  for (int i = 0; i < 8; ++i) p.after_failure(false);
  p.committed();
  EXPECT_LE(p.after_failure(false), milliseconds(100));
}

// PostgreSQL was down for a while: the failed reconnects grew the wait to the maximum. Once a
// reconnect succeeds, a failure waits what it would have before the outage (base 800 after three
// failures), not the outage's 2.5-5 s.
TEST(RetryPacing, TheFailedReconnectsOfAnOutageDoNotLengthenTheWaitsAfterIt) {
  RetryPacing p = pacing();
  for (int i = 0; i < 3; ++i) p.after_failure(false);  // base 800 when the server goes away
  for (int i = 0; i < 10; ++i) p.after_failure(true);
  EXPECT_GE(p.after_failure(true), milliseconds(2500)) << "the outage's own waits grow";
  p.reconnected();
  const milliseconds after = p.after_failure(false);
  EXPECT_GE(after, milliseconds(400));
  EXPECT_LE(after, milliseconds(800));
}

// A batch that always fails, with reconnects that sometimes fail in between (a server restarting
// after each attempt, say): the waits still grow to the maximum, never back to the first delay.
TEST(RetryPacing, ABatchThatAlwaysFailsBacksOffToTheMaximumThoughReconnectsFailInBetween) {
  RetryPacing p = pacing();
  milliseconds last{0};
  for (int round = 0; round < 12; ++round) {
    last = p.after_failure(false);  // the batch
    p.after_failure(true);          // a reconnect that failed
    p.reconnected();                // and the next that worked
  }
  EXPECT_GE(last, milliseconds(2500));
  EXPECT_LE(last, milliseconds(5000));
}

// A reconnect that works at once (the batch failed, the server is fine) changes nothing.
TEST(RetryPacing, AReconnectWithoutAnOutageChangesNothing) {
  RetryPacing p = pacing();
  for (int i = 0; i < 4; ++i) {
    p.after_failure(false);
    p.reconnected();
  }
  EXPECT_GE(p.after_failure(false), milliseconds(800));  // base 1,600 after four
}

}  // namespace
}  // namespace pm

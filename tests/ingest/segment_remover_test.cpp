// SegmentRemover on a real log: removals run on its thread (release_before returns while one is
// held up), up to the highest segment asked for; the destructor finishes what was asked; an
// exception from a removal is reported and the thread goes on.
#include "ingest/log/segment_remover.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/ingest/wal_dir_test.h"

namespace pm::wal {
namespace {

class SegmentRemoverTest : public WalDirTest {
 protected:
  // A log of small segments holding 400 records, with everything up to record 250 applied.
  std::unique_ptr<WriteAheadLog> filled_log(Options o) {
    auto log = WriteAheadLog::open(std::move(o));
    std::vector<Appended> all;
    for (int i = 0; i < 40; ++i) {
      std::vector<std::string> payloads(10, std::string(100, 'x'));
      std::vector<Appended> out;
      EXPECT_EQ(log->append(payloads, out), AppendStatus::Ok);
      all.insert(all.end(), out.begin(), out.end());
    }
    applied_ = all[250].end;
    log->note_applied(applied_);
    return log;
  }

  Position applied_;
  std::vector<std::string> errors_;
};

TEST_F(SegmentRemoverTest, RemovesOnItsOwnThreadUpToTheHighestSegmentAskedFor) {
  std::mutex mu;
  std::condition_variable cv;
  bool held = true;  // may_remove waits while true
  std::atomic<int> asked{0};
  Options o = options(2048);
  o.may_remove = [&](const LogId&, std::uint64_t) {
    ++asked;
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return !held; });
    return true;
  };
  auto log = filled_log(o);
  const std::size_t before = segments().size();
  ASSERT_GT(applied_.segment, 3u);
  {
    SegmentRemover remover(*log, [&](const std::string& m) { errors_.push_back(m); });
    remover.release_before(applied_.segment - 2);
    remover.release_before(applied_.segment);  // returns although the first removal is held up
    remover.release_before(2);                 // lower than asked: nothing more
    EXPECT_EQ(segments().size(), before) << "nothing may go while may_remove holds it up";
    {
      std::lock_guard lock(mu);
      held = false;
    }
    cv.notify_all();
    remover.wait_idle();
    EXPECT_EQ(log->oldest().segment, applied_.segment);
    EXPECT_EQ(segments().size(), before - (applied_.segment - 1));
  }
  EXPECT_GT(asked.load(), 0);
  EXPECT_TRUE(errors_.empty());
}

TEST_F(SegmentRemoverTest, TheDestructorFinishesTheRemovalAskedFor) {
  auto log = filled_log(options(2048));
  const std::size_t before = segments().size();
  {
    SegmentRemover remover(*log, [&](const std::string& m) { errors_.push_back(m); });
    remover.release_before(applied_.segment);
  }
  EXPECT_EQ(segments().size(), before - (applied_.segment - 1));
  EXPECT_EQ(log->oldest().segment, applied_.segment);
}

TEST_F(SegmentRemoverTest, AFailedRemovalIsReportedAndALaterOneRuns) {
  bool fail = true;
  Options o = options(2048);
  o.may_remove = [&](const LogId&, std::uint64_t) -> bool {
    if (fail) throw std::runtime_error("archive index unreadable");
    return true;
  };
  auto log = filled_log(o);
  SegmentRemover remover(*log, [&](const std::string& m) { errors_.push_back(m); });
  remover.release_before(applied_.segment - 1);
  remover.wait_idle();
  ASSERT_EQ(errors_.size(), 1u);
  EXPECT_NE(errors_[0].find("archive index unreadable"), std::string::npos) << errors_[0];
  EXPECT_EQ(log->oldest().segment, 1u);
  fail = false;
  remover.release_before(applied_.segment);
  remover.wait_idle();
  EXPECT_EQ(log->oldest().segment, applied_.segment);
}

// A removal the log refused (here may_remove; in the daemon, the applied position held back after
// the writer's reconnect) or that threw is tried again when the same segment is asked for again:
// the ask was dropped as "asked already", and the applied segments stayed on disk until a higher
// segment was confirmed, which an idle daemon never does.
TEST_F(SegmentRemoverTest, TheSameSegmentAskedForAgainAfterARefusalIsRemoved) {
  enum class Answer { Refuse, Throw, Allow };
  Answer answer = Answer::Refuse;
  Options o = options(2048);
  o.may_remove = [&](const LogId&, std::uint64_t) -> bool {
    if (answer == Answer::Throw) throw std::runtime_error("archive index unreadable");
    return answer == Answer::Allow;
  };
  auto log = filled_log(o);
  SegmentRemover remover(*log, [&](const std::string& m) { errors_.push_back(m); });
  remover.release_before(applied_.segment);
  remover.wait_idle();
  ASSERT_EQ(log->oldest().segment, 1u) << "refused";
  answer = Answer::Throw;
  remover.release_before(applied_.segment);
  remover.wait_idle();
  ASSERT_EQ(errors_.size(), 1u) << "tried again, and threw";
  answer = Answer::Allow;
  remover.release_before(applied_.segment);
  remover.wait_idle();
  EXPECT_EQ(log->oldest().segment, applied_.segment);
  remover.release_before(applied_.segment);  // done: not tried again
  remover.wait_idle();
  EXPECT_EQ(errors_.size(), 1u);
}

}  // namespace
}  // namespace pm::wal

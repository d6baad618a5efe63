// EventQueue: the hand-off from the log to the writer, and its doorbell (issue 14: a lane's
// completion wakes the writer through a real signal, not a sentinel event in the data queue).
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <future>
#include <vector>

#include <gtest/gtest.h>

#include "ingest/events/event_queue.h"
#include "tests/support/process.h"

namespace pm {
namespace {

using namespace std::chrono_literals;

std::vector<QueuedEvent> events(std::uint64_t first, std::size_t n) {
  std::vector<QueuedEvent> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i].lsn = first + i;
  return out;
}

TEST(EventQueue, PushedEventsArePoppedInOrderAndAFullQueueTakesNone) {
  EventQueue queue(4);
  auto first = events(1, 3);
  EXPECT_EQ(queue.push(first), 3u);
  auto too_many = events(4, 2);
  EXPECT_EQ(queue.push(too_many), 0u) << "a partial push would leave a gap";
  EXPECT_EQ(queue.size(), 3u);
  std::vector<QueuedEvent> out;
  EXPECT_EQ(queue.pop(out, 10, 0us), 3u);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].lsn, 1u);
  EXPECT_EQ(out[2].lsn, 3u);
  EXPECT_EQ(queue.size(), 0u);
}

// Resident memory now, from /proc/self/statm, in bytes.
std::uint64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

// --queue-max-events is a bound, not an allocation: a queue for 10,000,000 events (~300 bytes
// each) took ~1.3 GB resident at once (3 GB reserved), whatever --queue-max-bytes allowed. It
// still takes that many when they come.
TEST(EventQueue, ALargeBoundTakesNoMemoryUntilEventsComeAndStillHoldsThem) {
  const std::uint64_t before = resident_bytes();
  EventQueue queue(10'000'000);
  const std::uint64_t grown = resident_bytes() - std::min(before, resident_bytes());
  // ~10 MB here (the 32,768 events up front); a sanitizer's shadow memory multiplies it by up to
  // ~5, and the old queue took ~1.3 GB.
  EXPECT_LT(grown, 400u << 20) << "bytes resident after building the queue";
  auto many = events(1, 100'000);
  EXPECT_EQ(queue.push(many), 100'000u);
  std::vector<QueuedEvent> out;
  EXPECT_EQ(queue.pop(out, 200'000, 0us), 100'000u);
  EXPECT_EQ(out.back().lsn, 100'000u);
}

// Bounded in bytes as in events: a push whose record bytes would pass the bound takes none, and a
// pop frees the bytes it took.
TEST(EventQueue, APushPastTheByteBoundTakesNoneAndAPopFreesItsBytes) {
  EventQueue queue(100, 1000);
  auto sized = [](std::uint64_t first, std::size_t n, std::uint32_t bytes) {
    auto out = events(first, n);
    for (QueuedEvent& e : out) e.record_bytes = bytes;
    return out;
  };
  auto first = sized(1, 3, 300);
  EXPECT_EQ(queue.push(first), 3u);
  EXPECT_EQ(queue.bytes(), 900u);
  auto too_big = sized(4, 1, 101);
  EXPECT_EQ(queue.push(too_big), 0u) << "1,001 bytes";
  auto fits = sized(4, 1, 100);
  EXPECT_EQ(queue.push(fits), 1u);
  EXPECT_EQ(queue.bytes(), 1000u);
  std::vector<QueuedEvent> out;
  EXPECT_EQ(queue.pop(out, 2, 0us), 2u);
  EXPECT_EQ(queue.bytes(), 400u);
  auto more = sized(5, 2, 300);
  EXPECT_EQ(queue.push(more), 2u);
  EXPECT_EQ(queue.bytes(), 1000u);
}

TEST(EventQueue, AWaitingPopReturnsWhenEventsArrive) {
  EventQueue queue(16);
  std::vector<QueuedEvent> out;
  auto popped = std::async(std::launch::async, [&] { return queue.pop(out, 10, std::chrono::microseconds(60s)); });
  ASSERT_TRUE(test::wait_until([&] { return queue.waiting() == 1; }, 30s)) << "the pop never waited";
  auto batch = events(1, 2);
  ASSERT_EQ(queue.push(batch), 2u);
  ASSERT_EQ(popped.wait_for(30s), std::future_status::ready) << "the push did not wake the waiting pop";
  EXPECT_EQ(popped.get(), 2u);
}

TEST(EventQueue, TheDoorbellWakesAWaitingPopWithoutQueueingAnything) {
  EventQueue queue(16);
  std::vector<QueuedEvent> out;
  auto popped = std::async(std::launch::async, [&] { return queue.pop(out, 10, std::chrono::microseconds(60s)); });
  ASSERT_TRUE(test::wait_until([&] { return queue.waiting() == 1; }, 30s)) << "the pop never waited";
  queue.wake_consumer();
  ASSERT_EQ(popped.wait_for(30s), std::future_status::ready) << "the doorbell did not wake the waiting pop";
  EXPECT_EQ(popped.get(), 0u);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(queue.size(), 0u) << "the wake-up must not count as an event";
}

TEST(EventQueue, ADoorbellRungBeforeThePopIsNotLost) {
  EventQueue queue(16);
  queue.wake_consumer();  // e.g. a lane finished while the writer was busy elsewhere
  std::vector<QueuedEvent> out;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(queue.pop(out, 10, std::chrono::microseconds(60s)), 0u);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 30s) << "the pop waited although the bell had rung";
  // Rung once, answered once: the next pop waits its timeout again.
  EXPECT_EQ(queue.pop(out, 10, std::chrono::microseconds(1000)), 0u);
}

}  // namespace
}  // namespace pm

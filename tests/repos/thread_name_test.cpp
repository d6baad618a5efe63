// name_this_thread: the name is what top -H and ps -L read (/proc/self/task/<tid>/comm), cut to
// Linux's 15 bytes, and only the calling thread is renamed.
#include <gtest/gtest.h>

#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

#include "repos/util/thread_name.h"

namespace pm {
namespace {

std::string comm_of(long tid) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

long this_tid() { return static_cast<long>(::syscall(SYS_gettid)); }

TEST(ThreadName, NamesOnlyTheCallingThreadAndCutsTo15Bytes) {
  const std::string before = comm_of(this_tid());
  std::string seen_inside;
  std::thread worker([&] {
    name_this_thread("pm-a-rather-long-thread-name");
    seen_inside = comm_of(this_tid());
  });
  worker.join();
  EXPECT_EQ(seen_inside, "pm-a-rather-lon");
  EXPECT_EQ(comm_of(this_tid()), before);
}

}  // namespace
}  // namespace pm

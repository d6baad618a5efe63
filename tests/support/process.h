#pragma once
// Child processes for end-to-end tests: start a program with arguments and environment, its
// output to a file; wait for it, signal it, kill -9 it. Real processes, no mocks.
#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace pm::test {

class Process {
 public:
  Process() = default;
  ~Process();  // kills a still-running child (SIGKILL) and reaps it
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // How start() opens the output file: emptied (a file left by an earlier process of the same
  // name, e.g. a reused pid in it, is not read as this one's), or appended to (one file for every
  // run of a program the caller starts again, in a directory of its own).
  enum class Output { Fresh, Append };
  // Starts `program` with `args`; `env` entries are added to (or replace in) the environment.
  void start(const std::string& program, const std::vector<std::string>& args,
             const std::map<std::string, std::string>& env, const std::string& output_file, Output output = Output::Fresh);
  bool running();
  void signal(int sig);
  void kill9();
  // Waits for exit; the exit code (128+signal when killed), or nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// Polls `condition` every few milliseconds until it holds or `timeout` passes.
template <class Condition>
bool wait_until(Condition&& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    struct timespec ts{0, 5'000'000};
    nanosleep(&ts, nullptr);
  }
  return true;
}

std::string read_file(const std::string& path);
// How many times `what` (non-empty) occurs in `text`, not overlapping (a log's lines, a stream of replies).
std::size_t occurrences(const std::string& text, const std::string& what);

}  // namespace pm::test

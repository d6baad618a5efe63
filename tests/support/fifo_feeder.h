#pragma once
// FifoFeeder: the input of a producer process that a test holds mid-stream. It creates a FIFO and,
// from its own thread, writes lines [0, held_from) into it as fast as the reader takes them; lines
// [held_from, total) follow only after release(), and then the FIFO is closed (its reader sees the
// end of its input). So a producer reading it cannot finish before the test says so, whatever the
// machine's speed. Any thread may call release(); the destructor stops writing (lines not yet
// written are dropped). A FIFO that cannot be opened or written, or a line_of that throws, is a
// test failure (ADD_FAILURE) and ends the feeding.
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace pm::test {

class FifoFeeder {
 public:
  using LineOf = std::function<std::string(int index)>;  // without its newline
  FifoFeeder(std::string path, LineOf line_of, int held_from, int total);
  ~FifoFeeder();
  FifoFeeder(const FifoFeeder&) = delete;
  FifoFeeder& operator=(const FifoFeeder&) = delete;

  const std::string& path() const { return path_; }
  void release();

 private:
  void feed();
  bool write_lines(int fd, int from, int to);  // false: stopped
  bool write_all(int fd, const std::string& bytes);
  bool stopped();

  const std::string path_;
  const LineOf line_of_;
  const int held_from_;
  const int total_;
  std::mutex mu_;
  std::condition_variable changed_;
  bool released_ = false;  // guarded by mu_
  bool stopped_ = false;   // guarded by mu_
  std::thread thread_;
};

}  // namespace pm::test

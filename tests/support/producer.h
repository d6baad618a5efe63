#pragma once
// Producer: a protocol v1 client over the daemon's Unix socket, as a producer would write it:
// send lines, read {"ack":N} and {"error":..} replies. Blocking; one per thread.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pm::test {

struct Reply {
  bool is_ack = false;
  std::uint64_t ack = 0;
  std::string error;  // reason, for error replies
  std::uint64_t line = 0;
  std::string detail;
};

class Producer {
 public:
  // Connects; throws std::runtime_error when the socket does not accept.
  explicit Producer(const std::string& socket_path);
  ~Producer();
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  bool send(const std::vector<std::string>& lines);  // false when the connection broke
  bool send_raw(std::string_view bytes);
  void shutdown_write();
  // Reads replies until an ack >= n. nullopt when the connection closed or the timeout passed
  // first; `seen` (if given) receives every reply read meanwhile.
  std::optional<std::vector<Reply>> wait_ack(std::uint64_t n, std::chrono::milliseconds timeout,
                                             std::vector<Reply>* seen = nullptr);
  std::uint64_t last_ack() const { return last_ack_; }

 private:
  int fd_ = -1;
  std::string buffer_;
  std::uint64_t last_ack_ = 0;
};

// True when something accepts connections on the socket.
bool socket_accepts(const std::string& path);

// Reads from the connected socket `fd` until `text` is among the replies or the connection ends;
// every reply read, after `replies` (what an earlier call read).
std::string read_replies_until(int fd, const std::string& text, std::string replies = "");

}  // namespace pm::test

#pragma once
// ProducerConnection: one pipelined pm-loadgen connection to the daemon's socket.
//
// Contract:
// - One thread (run()) drives one Unix-socket connection with poll(): it writes lines while the
//   pacer allows and fewer than `window` lines are unacknowledged, and reads replies as they come,
//   so latency is measured under load, not stop-and-wait.
// - Ack latency of a line = time from the moment its last byte was written into the socket to the
//   moment the first {"ack":N} with N >= its line number was read (acks are cumulative).
// - {"error":reason,"line":K}: line K is refused. A `busy` line is sent again later (after a
//   back-off); any other reason makes the event Rejected and is counted by reason.
// - When the connection breaks (EOF, reset, the daemon killed), it reconnects with back-off and
//   resends every unacknowledged line, in order, on the new connection (line numbers restart at 1
//   there); this is what protocol.md asks of a producer.
// - The pacer is open-loop: line k of this connection is due at start + k / rate; when the
//   connection falls behind it sends what is due at once and records how far behind it was.
// - It gives up (counting what stays unacknowledged) when the daemon cannot be reached, or sends no
//   ack while lines are outstanding, for `give_up_after`.
// - Finishes when the source is exhausted and every line it took is acked or rejected.
// - Threads: run() is called once, on one thread, which alone touches the connection's state
//   (the members below recent_next_); unacked() from any thread; recent_acked() after run()
//   returned. The EventSource and LoadStats are shared with the other connections (thread-safe).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "daemon/loadgen/loadgen_histogram.h"
#include "daemon/loadgen/loadgen_source.h"

namespace pm::loadgen {

struct LoadStats {
  std::atomic<std::uint64_t> written{0};      // lines written, resends included
  std::atomic<std::uint64_t> acked{0};        // events acknowledged as durable
  std::atomic<std::uint64_t> rejected{0};     // events refused for good (not busy)
  std::atomic<std::uint64_t> busy{0};         // busy replies (those lines are sent again)
  std::atomic<std::uint64_t> resent{0};       // lines sent again after a reconnect
  std::atomic<std::uint64_t> reconnects{0};
  std::atomic<std::uint64_t> abandoned{0};    // never acked: the connection gave up
  std::atomic<int> gave_up{0};                // connections that gave up
  std::atomic<std::int64_t> first_write_ns{0};  // steady clock, 0 until the first write
  std::atomic<std::int64_t> last_ack_ns{0};
  std::atomic<std::int64_t> max_behind_ns{0};   // how far the pacer fell behind its schedule
  LatencyHistogram latency;                   // the whole run
  LatencyHistogram interval;                  // since the last progress line

  void count_error(const std::string& reason);
  std::map<std::string, std::uint64_t> errors_by_reason() const;

 private:
  mutable std::mutex errors_mu_;
  std::map<std::string, std::uint64_t> errors_;
};

struct ConnectionConfig {
  std::string socket_path;
  double rate = 0;  // lines per second for this connection; 0 = as fast as possible
  std::size_t window = 10000;
  std::chrono::milliseconds give_up_after{30000};
  // Called on run()'s thread each time a line's last byte went into the socket (again after a
  // resend), with the event's index and that moment (steady_ns); may be empty.
  std::function<void(std::uint64_t index, std::int64_t sent_ns)> on_written;
};

std::int64_t steady_ns();

class ProducerConnection {
 public:
  ProducerConnection(ConnectionConfig config, EventSource& source, LoadStats& stats)
      : config_(std::move(config)), source_(source), stats_(stats) {}
  void run();
  std::uint64_t unacked() const { return unacked_.load(); }
  // Indexes of the last events acked on this connection (at most kRecent, oldest first); valid
  // after run() returned. --wait-applied looks for these first: the writer applies the log in
  // order, so once the last acked events of every connection are visible, nearly all are.
  static constexpr std::size_t kRecent = 16;
  std::vector<std::uint64_t> recent_acked() const;

 private:
  // One event taken from the source, from the moment it is queued for the socket until an ack
  // covers it.
  struct Entry {
    std::uint64_t index = 0;    // the event's index in the source
    std::uint64_t line_no = 0;  // its line number on the current connection
    std::uint64_t end = 0;      // offset just past its '\n' in the current connection's byte stream
    std::int64_t sent_ns = 0;   // when its last byte went into the socket
    std::uint8_t refused = 0;   // 0 no, 1 busy (send again), 2 refused for good
    std::string line;           // the line, or empty when it is the source's file_line(index)
  };
  enum class Connect { Up, Retry, Stop };

  // The steps of run(), all on run()'s thread.
  Connect connect(std::int64_t now);  // when there is no connection: Stop when finished or given up
  void queue_lines(std::int64_t now);
  bool take_next(Entry& e, std::int64_t now);  // a resend, or a new event the pacer allows
  int poll_timeout_ms(std::int64_t now) const;
  bool exchange(short revents);  // writes, then reads; false when the connection broke
  bool write_queued();
  bool read_replies();
  void on_reply(std::string_view reply);
  void on_ack(std::uint64_t n);
  bool settle(Entry& e, std::int64_t now);  // an entry an ack covers; true when it was busy
  void remember_acked(std::uint64_t index);
  bool gave_up_waiting(std::int64_t now);   // no ack for give_up_after while lines are out
  void reconnect();                         // drops the connection; its unacked lines go first next time
  void disconnect();

  ConnectionConfig config_;
  EventSource& source_;
  LoadStats& stats_;
  std::atomic<std::uint64_t> unacked_{0};
  std::vector<std::uint64_t> recent_;  // ring of kRecent
  std::size_t recent_next_ = 0;

  std::deque<Entry> inflight_;  // written (or queued in out_), not yet covered by an ack
  std::deque<Entry> pending_;   // to send again: unacked at a reconnect, or refused busy
  int fd_ = -1;
  std::string out_;             // bytes queued for the socket
  std::size_t out_pos_ = 0;
  std::uint64_t queued_bytes_ = 0, written_bytes_ = 0;  // of the current connection's stream
  std::size_t stamp_pos_ = 0;   // first inflight entry whose bytes are not all written
  std::uint64_t next_line_ = 0;
  std::string in_;              // replies read, up to an incomplete last one
  bool source_done_ = false;
  std::int64_t period_ = 0;     // ns between two new lines; 0: as fast as possible
  std::int64_t next_due_ = 0;
  std::int64_t last_progress_ = 0;
  std::int64_t busy_until_ = 0, busy_backoff_ = 10'000'000;       // ns (10 ms)
  std::int64_t connect_backoff_ = 5'000'000, down_since_ = 0;     // ns (5 ms)
  std::int64_t give_up_ = 0;    // config_.give_up_after in ns
};

}  // namespace pm::loadgen

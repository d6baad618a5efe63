#pragma once
// ProducerConnection: one pm-loadgen connection to the daemon's socket: a paced feed of the
// EventSource into a pm::client::ProducerClient (client/producer_client.h), which does what
// protocol.md asks of a producer (pipelining, acks, busy backoff, reconnect and resend), the
// same code as the bot's C++ producers and `pm-ingestctl send`.
//
// Contract:
// - run() takes events from the source and sends each on its client, with at most `window`
//   lines unresolved (the client's max_in_flight: send_all() waits while the window is full), so
//   latency is measured under load, not stop-and-wait.
// - Ack latency of a line = from the moment its last byte first went into the socket to the
//   moment the ack covering it was read (acks are cumulative). A line resent after a reconnect
//   keeps its first write time: the outage counts. The same ack is also timed from the line's due
//   time (its place in the schedule; unpaced, when it was taken from the source): that figure
//   counts what the first leaves out, a line sent late because the window was full or the pacer
//   woke late (a stalled daemon stalls the sender too: coordinated omission). It includes the
//   pacer's own grain (up to a millisecond, below).
// - A `busy` line is sent again by the client after its backoff; any other refusal makes the
//   event Rejected and is counted by reason.
// - The pacer is open-loop: line k of this connection is due at start + k / rate; when the
//   connection falls behind it sends what is due at once and records how far behind it was.
//   The lines due at one tick go to the client in one hand-over (ProducerClient::send_all), so
//   they leave in one write, as a producer that has several lines at hand sends them.
// - It gives up (counting what stays unacknowledged) when the client does: the daemon cannot be
//   reached, or sends no ack while lines are outstanding, for `give_up_after`.
// - Finishes when the source is exhausted (or the client gave up) and every line it took is
//   acked, rejected or given up on.
// - Threads: run() is called once, on one thread; the client's I/O thread runs the outcome
//   callbacks; unacked() and client_stats() from any thread; recent_acked() after run() returned.
//   The EventSource and LoadStats are shared with the other connections (thread-safe).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "client/producer_client.h"
#include "daemon/loadgen/loadgen_histogram.h"
#include "daemon/loadgen/loadgen_source.h"

namespace pm::loadgen {

struct LoadStats {
  std::atomic<std::uint64_t> acked{0};        // events acknowledged as durable
  std::atomic<std::uint64_t> rejected{0};     // events refused for good (not busy)
  std::atomic<std::uint64_t> abandoned{0};    // never acked: the connection gave up
  std::atomic<int> gave_up{0};                // connections that gave up
  std::atomic<std::int64_t> first_send_ns{0};   // steady clock, 0 until the first line is sent
  std::atomic<std::int64_t> last_ack_ns{0};
  std::atomic<std::int64_t> max_behind_ns{0};   // how far the pacer fell behind its schedule
  LatencyHistogram latency;                   // the whole run, from the first write
  LatencyHistogram latency_from_due;          // the whole run, from the due time
  LatencyHistogram interval;                  // since the last progress line, from the first write

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
  // Called on the client's I/O thread when a line's last byte first went into the socket, with
  // the event's index, its due time and that moment (steady_ns); may be empty.
  std::function<void(std::uint64_t index, std::int64_t due_ns, std::int64_t sent_ns)> on_written;
};

std::int64_t steady_ns();

class ProducerConnection {
 public:
  ProducerConnection(ConnectionConfig config, EventSource& source, LoadStats& stats);
  ~ProducerConnection();
  void run();
  std::uint64_t unacked() const { return taken_.load() - settled_.load(); }
  // The client's counters (written, resent, busy, reconnects); any thread.
  client::ProducerStats client_stats() const;
  // Indexes of the last events acked on this connection (at most kRecent, oldest first); valid
  // after run() returned. --wait-applied looks for these first: the writer applies the log in
  // order, so once the last acked events of every connection are visible, nearly all are.
  static constexpr std::size_t kRecent = 16;
  std::vector<std::uint64_t> recent_acked() const;

 private:
  // Lines given to the client at once at most (all those due in one pacer tick, up to this).
  static constexpr std::size_t kHandOver = 256;
  void wait_for_due() const;  // the pacer's sleep until the next line is due
  void take_due(std::vector<client::ProducerClient::Outgoing>& due);
  client::ProducerClient::Outgoing outgoing(std::string line, std::uint64_t index, std::int64_t due_ns);
  void hand_over(std::vector<client::ProducerClient::Outgoing>& due);
  void settle(std::uint64_t index, std::int64_t due_ns, const client::LineOutcome& outcome);  // the client's I/O thread
  void remember_acked(std::uint64_t index);

  ConnectionConfig config_;
  EventSource& source_;
  LoadStats& stats_;
  std::unique_ptr<client::ProducerClient> client_;
  std::atomic<std::uint64_t> taken_{0}, settled_{0};
  std::atomic<bool> gave_up_{false};   // the client gave up on a line: take no more
  std::vector<std::uint64_t> recent_;  // ring of kRecent; the I/O thread's
  std::size_t recent_next_ = 0;
  std::int64_t period_ = 0;            // ns between two new lines; 0: as fast as possible
  std::int64_t next_due_ = 0;
};

}  // namespace pm::loadgen

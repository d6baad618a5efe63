#pragma once
// pm::client::ProducerClient: a producer for pm-ingestd's Unix socket (docs/protocol.md), for the
// bot's own C++ code, `pm-ingestctl send` and pm-loadgen's kind of load: lines in, one outcome per
// line out, with everything protocol.md asks of a producer done here.
//
// Contract:
// - send(line) queues one line (no newline inside) and returns at once, or blocks while
//   `max_in_flight` lines are unresolved (backpressure). Its outcome arrives once: through the
//   returned future, or the callback (run on the client's I/O thread: keep it short, never call
//   send(), flush() or close() from it, and never wait there for something a thread blocked in
//   send() holds; flush() there returns false at once, as no line can resolve while it runs; a
//   line the client resolves without sending it, `invalid`, a refused hello's `schema` or `closed`
//   after close(), is called back inside send(), on the caller's thread, after send() released
//   its lock). An `invalid` line does not wait for room in the window. An optional second
//   callback tells when the line was first written (same rules).
//   send_all(lines) is send() for each line in order, with one hand-over to the I/O thread: a
//   producer with several lines at hand (a burst from a feed, a paced tick) wakes it once, and
//   they go out in one write instead of one each.
//   - Acked: the daemon acknowledged the line: it is durable and reaches PostgreSQL exactly once.
//   - Rejected: refused for good (`parse`, `schema`, `range`, `timestamp_units`, `too_long`), with
//     the daemon's detail; or by the client without sending it (`invalid`: a line with a newline,
//     or a hello line of its own). `busy` is never an outcome: the line goes again after a backoff.
//   - Unacknowledged: the client gave up (`give_up_after` without an ack or a final rejection:
//     `busy` replies, the acks that follow them and refused connections do not count as
//     progress; or a line answered `busy` for give_up_after since its first `busy`, while other
//     lines were acked; or close() timed out): it may or may not be durable; sending it again is safe
//     (duplicates are deduplicated). A give-up drops the connection: the next lines go on a new
//     one, so a late reply for a given-up line can never resolve another.
// - Lines go out in send() order, pipelined on one connection. A `busy` reply pauses every write
//   (`busy_initial`, doubling up to `busy_max` with each pause until a line is acked; a `busy`
//   during a pause does not lengthen it); then the lines refused `busy` go again first, in send()
//   order, ahead of every line not written yet (lines written before the `busy` reply came stay
//   ahead of them). When the connection breaks (the daemon restarts, is killed), the client
//   reconnects with backoff and resends every line not yet acknowledged, in send() order; line
//   numbers restart at 1 on each connection and the client maps the daemon's replies back.
// - Options: the constructor throws std::invalid_argument, naming the option, for a
//   reconnect_initial or busy_initial of 0 ms or less, a reconnect_max or busy_max below its
//   initial, or a negative give_up_after (0: never give up); a max_in_flight of 0 is taken as 1.
// - `format` must be one of the four (the constructor throws std::invalid_argument otherwise);
//   other than "pm-ingestd" it sends a hello line (`{"hello":{"format":...}}`) as line 1 of every
//   connection. A hello answered `busy` is tried again on a new connection after the reconnect
//   backoff, with every line not acknowledged. A hello refused for good fails every line, now and
//   later. A line pending at the refusal that may be durable is Unacknowledged: every one once
//   some connection's hello was accepted, and a line written on an earlier connection that broke
//   before its reply was read (that daemon may have stored it before a restarted one refused the
//   hello). The other lines pending then, and the lines sent after it, are Rejected (`schema`).
//   failed_by_refused_hello() tells such outcomes.
// - Thread-safe: any thread may send(); one internal I/O thread owns the socket. close() (or the
//   destructor) waits until no line is unresolved (lines other threads send meanwhile count too),
//   up to its timeout, then resolves the rest as Unacknowledged. The destructor waits up to give_up_after (a day when that is 0).
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace pm::client {

struct ProducerOptions {
  std::string socket_path;
  std::string format = "pm-ingestd";  // or clob-ws-market, data-api-trades, clob-rest-trades
  std::size_t max_in_flight = 1000;
  std::chrono::milliseconds reconnect_initial{20};
  std::chrono::milliseconds reconnect_max{2000};
  std::chrono::milliseconds busy_initial{20};
  std::chrono::milliseconds busy_max{2000};
  std::chrono::milliseconds give_up_after{60000};  // no connection or no reply while lines wait (0: never)
};

struct LineOutcome {
  enum class Status { Acked, Rejected, Unacknowledged };
  Status status = Status::Unacknowledged;
  std::string reason;  // Rejected: the protocol's reason; Unacknowledged: why the client gave up
  std::string detail;  // the daemon's detail for a rejection
  int attempts = 0;    // times the line was written (resends after reconnects and `busy` count)
  std::chrono::steady_clock::time_point first_written{};  // when its last byte first went out
  std::chrono::steady_clock::time_point resolved{};
  bool acked() const { return status == Status::Acked; }
};

// Whether `outcome` failed because the daemon refused the connection's hello for good: every
// line the client is given after it fails too.
bool failed_by_refused_hello(const LineOutcome& outcome);

struct ProducerStats {
  std::uint64_t sent = 0;          // lines given to send()
  std::uint64_t written = 0;       // lines written to a socket, resends included
  std::uint64_t acked = 0;
  std::uint64_t rejected = 0;
  std::uint64_t unacknowledged = 0;
  std::uint64_t resent = 0;        // lines written again (after a reconnect, or after `busy`)
  std::uint64_t busy = 0;          // `busy` replies (each line sent again)
  // Connections made after the first (whatever ended the one before: a drop, a give-up, a
  // refusal); not disconnects, nor attempts that found no socket.
  std::uint64_t reconnects = 0;
  // Callbacks (done, on_written) that threw: the exception is dropped, and the line's outcome and
  // every other line's callbacks stand.
  std::uint64_t callback_errors = 0;
  // Replies that broke the protocol (not JSON, a mistyped ack or error, an ack of lines never
  // written, a reply line over 1 MiB): the connection is dropped and the unacknowledged lines are
  // sent again.
  std::uint64_t protocol_errors = 0;
  std::map<std::string, std::uint64_t> rejected_by_reason;
};

class ProducerClient {
 public:
  using Callback = std::function<void(const LineOutcome&)>;
  // When the line's last byte first went into the socket; the I/O thread, before its outcome.
  using WrittenCallback = std::function<void(std::chrono::steady_clock::time_point)>;
  explicit ProducerClient(ProducerOptions options);
  ~ProducerClient();  // close(give_up_after)
  ProducerClient(const ProducerClient&) = delete;
  ProducerClient& operator=(const ProducerClient&) = delete;

  struct Outgoing {
    std::string line;
    Callback done;
    WrittenCallback on_written;
  };
  std::future<LineOutcome> send(std::string line);
  void send(std::string line, Callback done, WrittenCallback on_written = nullptr);
  void send_all(std::vector<Outgoing> lines);
  // Waits until no line is unresolved, lines other threads send meanwhile included (under steady
  // sending from other threads it may never be); false when `timeout` passed first. Not from a
  // callback: there it returns at once (false while any line is unresolved, the one called back
  // included).
  bool flush(std::chrono::milliseconds timeout);
  // flush(timeout), then stops: what is still unresolved becomes Unacknowledged. Idempotent.
  void close(std::chrono::milliseconds timeout);
  ProducerStats stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pm::client

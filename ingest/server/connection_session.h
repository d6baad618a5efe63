#pragma once
// ConnectionSession: the conversation with one producer connection, from its first byte to the
// moment it ends (what the producer sees, and the limits: server.h and protocol.md).
//
// run() loops: poll the socket (and the Server's wake fd); read a chunk (read_chunk(): 64-256 KiB,
// by how many producers are connected); split it into numbered lines and parse them (on_line);
// submit the chunk's valid events to the pipeline in one call and answer (answer()): the error
// lines in line order, then one cumulative {"ack":N}, or the ack held back while the producer is
// not reading its replies. A held ack goes out at the first read (a line or only part of one)
// after the producer has read its replies, or when it is looked at again without a read: 20 ms
// after it was held, then at intervals doubling up to 1 s while the producer reads none of its
// replies (back to 20 ms when it reads some or a line arrives): a producer that never reads wakes
// its connection about once a second, not 50 times. A reply blocked for reply_timeout, or a line
// incomplete for line_timeout, ends the session. A connection that has sent nothing for
// kIdleReleaseMs frees what it kept for the next lines (the parsers' buffers, the read buffer, the
// replies' and the chunk's vectors, the pipeline's encoding buffers of its thread): an idle
// connection holds little memory; its next line allocates them again.
//
// A line may hold any number of events (a hello none, a Polymarket array line several:
// line_decoder.h): they are submitted with the chunk's, so they are made durable in one log group,
// all or none, and the line is answered once (busy for all of it when they could not be).
//
// Ownership and threads:
// - The session owns the connection's reading state: the line splitter and decoder, the chunk's
//   events and errors, the replies, the held-back ack, since when the unfinished line arrives.
// - It does not own the socket: the Server accepted it, set its send timeout (SO_SNDTIMEO =
//   reply_timeout), and closes it after run() returns, then releases the peer's per-uid slot.
// - run() is called once, on the connection's own thread; nothing else is called on a session.
//   The pipeline, metrics and logger it is given are thread-safe; `wake_fd` becomes readable when
//   the Server stops; `open_connections` is only read.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/logger.h>

#include "ingest/events/event.h"
#include "ingest/server/ingest_pipeline.h"
#include "ingest/server/line_decoder.h"
#include "ingest/server/line_splitter.h"
#include "ingest/server/protocol.h"
#include "metrics/ingest_metrics.h"

namespace pm {

inline constexpr std::size_t kMaxPendingErrors = 1024;
inline constexpr std::size_t kUnreadRepliesForAckHold = 16 << 10;
inline constexpr int kAckHoldRecheckMs = 20;
inline constexpr int kAckHoldRecheckMaxMs = 1000;
inline constexpr int kIdleReleaseMs = 1000;

// What a session needs of the ServerConfig.
struct SessionLimits {
  std::size_t max_line_bytes = 1 << 20;
  std::int64_t stale_after_ms = 300'000;  // G1: events older than this on arrival are counted
  std::chrono::seconds reply_timeout{30};
  std::chrono::seconds line_timeout{30};
};

// Sends everything; false when the peer is gone or stopped reading for the send timeout (errno
// tells which: EAGAIN/EWOULDBLOCK for the timeout). Also used to refuse a connection.
bool send_all(int fd, const std::string& data);

class ConnectionSession {
 public:
  // `peer` names the producer in log lines ("pid P uid U gid G"). `sending_since` holds, while a
  // send of replies is under way, when it began (steady clock, ns), else 0: the server's stop cuts
  // a send that has waited too long on a producer that does not read.
  ConnectionSession(int fd, std::string peer, const SessionLimits& limits, IngestPipeline& pipeline, IngestMetrics& metrics,
                    spdlog::logger& logger, int wake_fd, const std::atomic<std::size_t>& open_connections,
                    std::atomic<std::int64_t>& sending_since);
  ConnectionSession(const ConnectionSession&) = delete;
  ConnectionSession& operator=(const ConnectionSession&) = delete;

  // Serves the connection until the producer closes it (its last lines answered), a reply or a
  // line times out, the socket fails, or wake_fd is readable (the held-back ack sent).
  void run();

 private:
  struct LineError {
    std::uint64_t line;
    RejectReason reason;
    std::string detail;
  };

  // One step of run(); false ends the session.
  bool on_poll_timeout();
  bool on_readable();
  void feed(std::string_view bytes);
  void on_line(std::uint64_t number, std::string_view text, bool too_long);
  // Counts what an accepted line held: its events from events_[first_event] on, its messages.
  // A line with events is counted only once they are durable (count_durable_chunk): a line
  // answered `busy` is sent again, and was counted each time.
  void count_line(std::size_t first_event);
  void count_messages(const MessageTally& messages);
  void count_durable_chunk();
  bool answer();        // answer_chunk(), its time not counted against an unfinished line
  bool answer_chunk();
  // Sends replies_; false when the producer went away or did not read them for --reply-timeout
  // (logged and counted as a reply_timeout close unless `closing_counted`: the connection is
  // already being closed, logged and counted, for another reason).
  bool send_replies(bool closing_counted = false);
  bool send_pending_ack();
  bool send_pending_ack_if_read();
  void hold_ack(std::uint64_t line);
  void close_for_slow_line();
  bool line_timed_out() const;
  void release_idle_memory();
  int poll_timeout_ms() const;

  const int fd_;
  const std::string peer_;
  const SessionLimits limits_;
  IngestPipeline& pipeline_;
  IngestMetrics& metrics_;
  spdlog::logger& logger_;
  const int wake_fd_;
  const std::atomic<std::size_t>& open_connections_;
  std::atomic<std::int64_t>& sending_since_;

  LineDecoder decoder_;
  LineSplitter splitter_;
  const LineSplitter::LineFn line_fn_;  // calls on_line()
  std::vector<char> buffer_;            // one read
  std::int64_t received_ms_ = 0;        // when the chunk being split arrived
  std::vector<Event> events_;           // the chunk's valid events, not yet submitted
  std::vector<std::uint64_t> event_lines_;  // the lines they came from, each once
  // pm_ingest_polymarket_messages_total of this connection's format, by PolymarketMessage (made on first use).
  std::array<prometheus::Counter*, kPolymarketMessageCount> message_counters_{};
  // What the chunk's lines with events hold, counted once they are durable.
  struct ChunkCounts {
    std::uint64_t trades = 0, triggers = 0, stale_trades = 0, stale_triggers = 0;
    MessageTally messages{};
  };
  ChunkCounts chunk_counts_;
  std::vector<LineError> errors_;       // the chunk's bad lines, not yet answered
  std::uint64_t last_line_ = 0;         // the last line split
  std::uint64_t acked_ = 0;             // the last line answered
  std::uint64_t pending_ack_ = 0;       // an ack held back while the producer is not reading its replies
  // While an ack is held: when to look again whether the producer read its replies, the interval
  // after that, and the unread reply bytes at the last look.
  std::chrono::steady_clock::time_point ack_recheck_at_{};
  int ack_recheck_ms_ = kAckHoldRecheckMs;
  std::size_t unread_at_recheck_ = 0;
  std::string replies_;
  bool reply_failed_ = false;  // a send failed (the producer went away, or did not read for the reply timeout)
  // Since when the unfinished line has been arriving; meaningful while splitter_.has_partial().
  std::chrono::steady_clock::time_point partial_since_{};
  // When bytes last arrived, and whether memory kept since then is still to be freed once idle.
  std::chrono::steady_clock::time_point last_read_{};
  bool holds_idle_memory_ = false;
};

}  // namespace pm

#include "ingest/server/connection_session.h"

#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "ingest/server/kept_buffers.h"
#include "repos/util/clock.h"

namespace pm {

namespace {

// How much one read may take, i.e. at most how many lines go into one group commit per
// connection. Larger chunks mean fewer, larger fdatasyncs under load (measured: 256 KiB instead of
// 64 KiB takes end to end from ~85k to ~100k rows/s and the daemon's CPU down a fifth); a
// connection gets them while few producers are connected, so that all read buffers together stay
// within kReadBudget, and never less than 64 KiB (1,024 connections: 64 MiB, as before).
constexpr std::size_t kMinReadChunk = 64 * 1024;
constexpr std::size_t kMaxReadChunk = 256 * 1024;
constexpr std::size_t kReadBudget = 16 * 1024 * 1024;

std::size_t read_chunk(std::size_t open_connections) {
  return std::clamp(kReadBudget / std::max<std::size_t>(1, open_connections), kMinReadChunk, kMaxReadChunk);
}

// What the replies the producer has not read yet take of the socket's send memory (SIOCOUTQ on a
// Unix socket: each queued reply counts with its buffer overhead, several hundred bytes, not only
// its text).
std::size_t unread_reply_bytes(int fd) {
  int queued = 0;
  return ::ioctl(fd, SIOCOUTQ, &queued) == 0 && queued > 0 ? static_cast<std::size_t>(queued) : 0;
}

const char* busy_detail(SubmitResult r) {
  switch (r) {
    case SubmitResult::OverBudget: return "backlog budget (--wal-max-bytes) exhausted; not stored, retry later";
    case SubmitResult::DiskFull: return "log disk full; not stored, retry later";
    case SubmitResult::IoError: return "log write failed; not stored, retry later";
    case SubmitResult::ShuttingDown: return "daemon shutting down; not stored, retry later";
    case SubmitResult::Durable: break;
  }
  return "not stored, retry later";
}

}  // namespace

bool send_all(int fd, const std::string& data) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

ConnectionSession::ConnectionSession(int fd, std::string peer, const SessionLimits& limits, IngestPipeline& pipeline,
                                     IngestMetrics& metrics, spdlog::logger& logger, int wake_fd,
                                     const std::atomic<std::size_t>& open_connections,
                                     std::atomic<std::int64_t>& sending_since)
    : fd_(fd),
      peer_(std::move(peer)),
      limits_(limits),
      pipeline_(pipeline),
      metrics_(metrics),
      logger_(logger),
      wake_fd_(wake_fd),
      open_connections_(open_connections),
      sending_since_(sending_since),
      splitter_(limits.max_line_bytes),
      line_fn_([this](std::uint64_t number, std::string_view text, bool too_long) { on_line(number, text, too_long); }) {}

void ConnectionSession::run() {
  pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  for (;;) {
    const int ready = ::poll(fds, 2, poll_timeout_ms());
    if (ready < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) {  // shutting down: what was answered stays answered
      send_pending_ack();
      return;
    }
    if (!(ready == 0 ? on_poll_timeout() : on_readable())) return;
  }
}

// Nothing arrived in time: a line incomplete for too long closes the connection; a connection
// idle for kIdleReleaseMs frees its buffers; a held-back ack goes out once the producer has read
// its replies.
bool ConnectionSession::on_poll_timeout() {
  if (line_timed_out()) {
    close_for_slow_line();
    return false;
  }
  const auto now = std::chrono::steady_clock::now();
  if (holds_idle_memory_ && now >= last_read_ + std::chrono::milliseconds(kIdleReleaseMs)) release_idle_memory();
  if (pending_ack_ == 0 || now < ack_recheck_at_) return true;
  const std::size_t unread = unread_reply_bytes(fd_);
  if (unread <= kUnreadRepliesForAckHold) return send_pending_ack();
  // Still unread: look again later, less often while the producer reads none of it.
  ack_recheck_ms_ = unread < unread_at_recheck_ ? kAckHoldRecheckMs : std::min(2 * ack_recheck_ms_, kAckHoldRecheckMaxMs);
  unread_at_recheck_ = unread;
  ack_recheck_at_ = now + std::chrono::milliseconds(ack_recheck_ms_);
  return true;
}

bool ConnectionSession::on_readable() {
  if (const std::size_t chunk = read_chunk(open_connections_.load()); buffer_.size() != chunk)
    std::vector<char>(chunk).swap(buffer_);
  const ssize_t n = ::read(fd_, buffer_.data(), buffer_.size());
  if (n < 0) return errno == EINTR || errno == EAGAIN;
  received_ms_ = now_epoch_ms();
  last_read_ = std::chrono::steady_clock::now();
  holds_idle_memory_ = true;
  if (n == 0) {  // the producer finished sending (it may still read our replies)
    splitter_.finish(line_fn_);
    if (!reply_failed_ && answer()) send_pending_ack();
    return false;
  }
  feed(std::string_view(buffer_.data(), static_cast<std::size_t>(n)));
  // A producer that keeps the socket busy with one endless line never lets poll() time out.
  if (line_timed_out()) {
    if (!reply_failed_ && answer()) close_for_slow_line();
    return false;
  }
  return !reply_failed_ && answer();
}

void ConnectionSession::feed(std::string_view bytes) {
  const std::uint64_t lines_before = splitter_.lines();
  const bool partial_before = splitter_.has_partial();
  splitter_.feed(bytes, line_fn_);
  if (splitter_.has_partial() && (!partial_before || splitter_.lines() != lines_before))
    partial_since_ = std::chrono::steady_clock::now();  // the unfinished line began in this read
}

void ConnectionSession::on_line(std::uint64_t number, std::string_view text, bool too_long) {
  last_line_ = number;
  if (reply_failed_) return;
  if (too_long) {
    errors_.push_back({number, RejectReason::TooLong,
                       "line longer than " + std::to_string(limits_.max_line_bytes) + " bytes; skipped"});
    return;
  }
  const std::size_t first_event = events_.size();
  if (auto rejection = decoder_.decode(number, text, received_ms_, events_)) {
    errors_.push_back({number, rejection->reason, std::move(rejection->detail)});
    // A chunk of bad lines is answered in parts: the replies waiting in memory stay bounded,
    // and a producer that does not read them stops being read (send blocks, up to the timeout).
    if (errors_.size() >= kMaxPendingErrors && !answer()) reply_failed_ = true;
    return;
  }
  count_line(first_event);
  if (events_.size() != first_event) event_lines_.push_back(number);
}

void ConnectionSession::count_line(std::size_t first_event) {
  ChunkCounts& c = chunk_counts_;
  for (std::size_t i = first_event; i < events_.size(); ++i) {
    const Event& event = events_[i];
    const bool is_trade = event.type() == EventType::Trade;
    ++(is_trade ? c.trades : c.triggers);
    if (received_ms_ - event.event_time_ms() > limits_.stale_after_ms) ++(is_trade ? c.stale_trades : c.stale_triggers);
  }
  const LineTally& tally = decoder_.tally();
  if (tally.hello) {
    metrics_.hellos(to_string(decoder_.format())).Increment();
  } else if (decoder_.format() != PayloadFormat::PmIngestd) {
    if (events_.size() == first_event) {
      count_messages(tally.messages);  // no events: never answered busy
    } else {
      for (std::size_t m = 0; m < c.messages.size(); ++m) c.messages[m] += tally.messages[m];
    }
  }
}

void ConnectionSession::count_messages(const MessageTally& messages) {
  for (std::size_t m = 0; m < messages.size(); ++m) {
    if (messages[m] == 0) continue;
    if (!message_counters_[m])
      message_counters_[m] = &metrics_.polymarket_messages(to_string(decoder_.format()), to_string(static_cast<PolymarketMessage>(m)));
    message_counters_[m]->Increment(messages[m]);
  }
}

void ConnectionSession::count_durable_chunk() {
  const ChunkCounts& c = chunk_counts_;
  if (c.trades > 0) metrics_.received_trades.Increment(static_cast<double>(c.trades));
  if (c.triggers > 0) metrics_.received_triggers.Increment(static_cast<double>(c.triggers));
  if (c.stale_trades > 0) metrics_.stale_trades.Increment(static_cast<double>(c.stale_trades));
  if (c.stale_triggers > 0) metrics_.stale_triggers.Increment(static_cast<double>(c.stale_triggers));
  count_messages(c.messages);
}

// The daemon's own time answering (the log's sync, a reply send) is not the producer's: the
// unfinished line's --line-timeout clock stops meanwhile. Only a read that completed a line has
// anything to answer (a read that completed none sends at most an ack held back), and the line left
// unfinished then began in that read, so it is credited with one answer's time at most.
bool ConnectionSession::answer() {
  const auto started = std::chrono::steady_clock::now();
  const bool answered = answer_chunk();
  if (splitter_.has_partial()) partial_since_ += std::chrono::steady_clock::now() - started;
  return answered;
}

// Makes the chunk's events durable, then answers every line of the chunk. An ack alone is held
// back while more than kUnreadRepliesForAckHold bytes of replies are unread: acks are
// cumulative, so the producer needs only the latest, and a stream of small acks it does not
// read would fill the socket and stop this thread from reading it.
bool ConnectionSession::answer_chunk() {
  // No line completed: the producer is sending (part of a line), and may have read its replies
  // meanwhile. Its held ack goes out now: while bytes keep arriving the poll never times out.
  if (last_line_ == acked_) return send_pending_ack_if_read();
  const SubmitResult result = pipeline_.submit(events_);
  if (result == SubmitResult::Durable) count_durable_chunk();
  chunk_counts_ = ChunkCounts{};
  if (result != SubmitResult::Durable) {
    for (std::uint64_t line : event_lines_) errors_.push_back({line, RejectReason::Busy, busy_detail(result)});
    std::stable_sort(errors_.begin(), errors_.end(), [](const LineError& a, const LineError& b) { return a.line < b.line; });
    events_.clear();
  }
  replies_.clear();
  for (const auto& e : errors_) {
    append_error(replies_, e.reason, e.line, e.detail);
    // A stop's refusals are `busy` on the wire but counted apart: PmIngestdRejectingBusy pages on
    // busy (budget or disk), which a routine restart must not.
    const bool stopping = e.reason == RejectReason::Busy && result == SubmitResult::ShuttingDown;
    metrics_.rejected(stopping ? "shutting_down" : to_string(e.reason)).Increment();
  }
  const bool ack_only = errors_.empty();
  errors_.clear();
  event_lines_.clear();
  clear_and_release_if_large(events_);  // submit() emptied it, or it was refused
  give_back_released_memory();          // of this chunk's large buffers, if any
  acked_ = last_line_;
  if (ack_only) {
    if (const std::size_t unread = unread_reply_bytes(fd_); unread > kUnreadRepliesForAckHold) {
      hold_ack(acked_);
      unread_at_recheck_ = unread;
      return true;
    }
  }
  append_ack(replies_, last_line_);
  pending_ack_ = 0;
  return send_replies();
}

bool ConnectionSession::send_replies(bool closing_counted) {
  sending_since_ = std::chrono::steady_clock::now().time_since_epoch().count();
  const bool sent = send_all(fd_, replies_);
  sending_since_ = 0;
  if (sent) return true;
  if ((errno == EAGAIN || errno == EWOULDBLOCK) && !closing_counted) {
    logger_.warn("closed the connection of {}: its replies were not read for {} s (--reply-timeout)", peer_,
                 limits_.reply_timeout.count());
    metrics_.connections_closed("reply_timeout").Increment();
  }
  return false;
}

// A line arrived: its ack is held, looked at again soon.
void ConnectionSession::hold_ack(std::uint64_t line) {
  pending_ack_ = line;
  ack_recheck_ms_ = kAckHoldRecheckMs;
  ack_recheck_at_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(ack_recheck_ms_);
}

bool ConnectionSession::send_pending_ack_if_read() {
  if (pending_ack_ == 0 || unread_reply_bytes(fd_) > kUnreadRepliesForAckHold) return true;
  return send_pending_ack();
}

bool ConnectionSession::send_pending_ack() {
  if (pending_ack_ == 0) return true;
  replies_.clear();
  append_ack(replies_, pending_ack_);
  pending_ack_ = 0;
  return send_replies();
}

// The unfinished line is `busy` (send it again), or `too_long` when it is already past
// --max-line-bytes: sending it again cannot help. Only the latter counts as a rejected line: a
// slow producer is counted in connections_closed, not as the `busy` of a full log the alert means.
void ConnectionSession::close_for_slow_line() {
  const std::uint64_t line = splitter_.lines() + 1;
  const std::string waited = std::to_string(limits_.line_timeout.count()) + " s (--line-timeout); connection closed";
  replies_.clear();
  if (splitter_.skipping()) {
    append_error(replies_, RejectReason::TooLong, line,
                 "line longer than " + std::to_string(limits_.max_line_bytes) + " bytes, and its end did not arrive within " + waited);
    metrics_.rejected(to_string(RejectReason::TooLong)).Increment();
  } else {
    append_error(replies_, RejectReason::Busy, line, "line incomplete for " + waited + ", not stored: send it again");
  }
  if (pending_ack_ != 0) append_ack(replies_, pending_ack_);
  metrics_.connections_closed("line_timeout").Increment();
  logger_.warn("closed the connection of {}: line {} incomplete for {} s (--line-timeout)", peer_, line,
               limits_.line_timeout.count());
  send_replies(/*closing_counted=*/true);  // one close, one reason: its replies' timeout is not counted again
}

bool ConnectionSession::line_timed_out() const {
  return splitter_.has_partial() && std::chrono::steady_clock::now() >= partial_since_ + limits_.line_timeout;
}

void ConnectionSession::release_idle_memory() {
  decoder_.release_buffers();
  note_released(splitter_.partial_capacity());
  splitter_.release_buffer();
  note_released(buffer_.capacity() + replies_.capacity() + errors_.capacity() * sizeof(LineError) +
                events_.capacity() * sizeof(Event) + event_lines_.capacity() * sizeof(std::uint64_t));
  std::vector<char>().swap(buffer_);  // on_readable() allocates it again
  std::string().swap(replies_);
  std::vector<LineError>().swap(errors_);  // all empty between reads
  std::vector<Event>().swap(events_);
  std::vector<std::uint64_t>().swap(event_lines_);
  IngestPipeline::release_thread_buffers();
  give_back_released_memory_now_idle();
  holds_idle_memory_ = false;
}

int ConnectionSession::poll_timeout_ms() const {
  int timeout = -1;
  const auto now = std::chrono::steady_clock::now();
  const auto sooner = [&timeout, now](std::chrono::steady_clock::time_point due) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(due - now);
    const int left_ms = static_cast<int>(std::clamp<std::int64_t>(left.count() + 1, 0, 60'000));
    timeout = timeout < 0 ? left_ms : std::min(timeout, left_ms);
  };
  if (pending_ack_ != 0) sooner(ack_recheck_at_);  // an ack held back: look again
  if (splitter_.has_partial()) sooner(partial_since_ + limits_.line_timeout);
  if (holds_idle_memory_) sooner(last_read_ + std::chrono::milliseconds(kIdleReleaseMs));
  return timeout;
}

}  // namespace pm

#include "daemon/loadgen/loadgen_connection.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <thread>

#include <simdjson.h>

#include "ingest/server/unix_socket.h"

namespace pm::loadgen {

namespace {

constexpr std::size_t kMaxBufferedBytes = 256 * 1024;  // written ahead of the socket at most
constexpr std::int64_t kMs = 1'000'000;

void atomic_max(std::atomic<std::int64_t>& a, std::int64_t v) {
  std::int64_t seen = a.load(std::memory_order_relaxed);
  while (v > seen && !a.compare_exchange_weak(seen, v, std::memory_order_relaxed)) {
  }
}

}  // namespace

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void LoadStats::count_error(const std::string& reason) {
  std::lock_guard lock(errors_mu_);
  ++errors_[reason];
}

std::map<std::string, std::uint64_t> LoadStats::errors_by_reason() const {
  std::lock_guard lock(errors_mu_);
  return errors_;
}

std::vector<std::uint64_t> ProducerConnection::recent_acked() const {
  std::vector<std::uint64_t> out;
  for (std::size_t i = 0; i < recent_.size(); ++i) out.push_back(recent_[(recent_next_ + i) % recent_.size()]);
  return out;
}

void ProducerConnection::run() {
  period_ = config_.rate > 0 ? static_cast<std::int64_t>(1e9 / config_.rate) : 0;
  next_due_ = steady_ns();
  last_progress_ = next_due_;
  give_up_ = std::chrono::duration_cast<std::chrono::nanoseconds>(config_.give_up_after).count();
  for (;;) {
    std::int64_t now = steady_ns();
    unacked_.store(inflight_.size() + pending_.size(), std::memory_order_relaxed);
    if (fd_ < 0) {
      const Connect c = connect(now);
      if (c == Connect::Stop) break;
      if (c == Connect::Retry) continue;
    }
    // Queue lines: resends first, then new events as the pacer allows.
    queue_lines(now);
    if (source_done_ && inflight_.empty() && pending_.empty()) break;

    pollfd p{fd_, POLLIN, 0};
    if (out_pos_ < out_.size()) p.events |= POLLOUT;
    if (::poll(&p, 1, poll_timeout_ms(now)) < 0) {
      if (errno == EINTR) continue;
      reconnect();
      continue;
    }
    const bool broken = !exchange(p.revents);
    now = steady_ns();
    if (broken) {
      reconnect();
      continue;
    }
    if (gave_up_waiting(now)) break;
  }
  if (fd_ >= 0) ::close(fd_);
  unacked_.store(0);
}

ProducerConnection::Connect ProducerConnection::connect(std::int64_t now) {
  if (source_done_ && pending_.empty()) return Connect::Stop;
  fd_ = connect_unix_socket(config_.socket_path, /*nonblocking=*/true);
  if (fd_ < 0) {
    if (down_since_ == 0) down_since_ = now;
    if (now - down_since_ > give_up_) {
      stats_.abandoned.fetch_add(pending_.size(), std::memory_order_relaxed);
      stats_.gave_up.fetch_add(1);
      return Connect::Stop;
    }
    std::this_thread::sleep_for(std::chrono::nanoseconds(connect_backoff_));  // daemon down: retry interval
    connect_backoff_ = std::min<std::int64_t>(connect_backoff_ * 2, 200 * kMs);
    return Connect::Retry;
  }
  down_since_ = 0;
  connect_backoff_ = 5 * kMs;
  last_progress_ = now;
  return Connect::Up;
}

void ProducerConnection::queue_lines(std::int64_t now) {
  while (out_.size() - out_pos_ < kMaxBufferedBytes && inflight_.size() < config_.window && now >= busy_until_) {
    Entry e;
    if (!take_next(e, now)) break;
    e.line_no = ++next_line_;
    e.sent_ns = 0;
    const std::string_view text = e.line.empty() ? source_.file_line(e.index) : std::string_view(e.line);
    out_ += text;
    out_ += '\n';
    queued_bytes_ += text.size() + 1;
    e.end = queued_bytes_;
    inflight_.push_back(std::move(e));
  }
}

bool ProducerConnection::take_next(Entry& e, std::int64_t now) {
  if (!pending_.empty()) {
    e = std::move(pending_.front());
    pending_.pop_front();
    return true;
  }
  if (source_done_) return false;
  if (period_ > 0 && now < next_due_) return false;
  if (!source_.next(e.line, e.index)) {
    source_done_ = true;
    return false;
  }
  source_.set_status(e.index, EventStatus::Sent);
  if (period_ > 0) {
    atomic_max(stats_.max_behind_ns, now - next_due_);
    next_due_ += period_;
  }
  return true;
}

int ProducerConnection::poll_timeout_ms(std::int64_t now) const {
  std::int64_t wait = 100 * kMs;
  if (period_ > 0 && !source_done_ && pending_.empty() && inflight_.size() < config_.window)
    wait = std::min(wait, next_due_ - now);
  if (busy_until_ > now) wait = std::min(wait, busy_until_ - now);
  return wait <= 0 ? 0 : static_cast<int>((wait + kMs - 1) / kMs);
}

bool ProducerConnection::exchange(short revents) {
  bool broken = false;
  if ((revents & POLLOUT) && out_pos_ < out_.size()) broken = !write_queued();
  if (!broken && (revents & (POLLIN | POLLHUP | POLLERR))) broken = !read_replies();
  return !broken;
}

bool ProducerConnection::write_queued() {
  const ssize_t n = ::send(fd_, out_.data() + out_pos_, out_.size() - out_pos_, MSG_NOSIGNAL);
  if (n <= 0) return !(n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
  out_pos_ += static_cast<std::size_t>(n);
  written_bytes_ += static_cast<std::uint64_t>(n);
  const std::int64_t t = steady_ns();
  std::int64_t expected = 0;
  stats_.first_write_ns.compare_exchange_strong(expected, t);
  std::uint64_t lines = 0;
  while (stamp_pos_ < inflight_.size() && inflight_[stamp_pos_].end <= written_bytes_) {
    Entry& e = inflight_[stamp_pos_++];
    e.sent_ns = t;
    if (config_.on_written) config_.on_written(e.index, t);
    ++lines;
  }
  stats_.written.fetch_add(lines, std::memory_order_relaxed);
  if (out_pos_ == out_.size()) {
    out_.clear();
    out_pos_ = 0;
  } else if (out_pos_ >= kMaxBufferedBytes) {
    out_.erase(0, out_pos_);
    out_pos_ = 0;
  }
  return true;
}

bool ProducerConnection::read_replies() {
  char buf[65536];
  const ssize_t n = ::read(fd_, buf, sizeof buf);
  if (n <= 0) return !(n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR));
  in_.append(buf, static_cast<std::size_t>(n));
  std::size_t start = 0;
  for (std::size_t nl; (nl = in_.find('\n', start)) != std::string::npos; start = nl + 1)
    on_reply(std::string_view(in_).substr(start, nl - start));
  in_.erase(0, start);
  return true;
}

void ProducerConnection::on_reply(std::string_view r) {
  static thread_local simdjson::dom::parser parser;
  constexpr std::string_view kAck = R"({"ack":)";
  if (r.substr(0, kAck.size()) == kAck) {
    std::uint64_t n = 0;
    std::from_chars(r.data() + kAck.size(), r.data() + r.size(), n);
    on_ack(n);
    return;
  }
  simdjson::padded_string padded(r);
  simdjson::dom::element doc;
  std::string_view reason = "unknown";
  std::uint64_t line = 0;
  if (parser.parse(padded).get(doc) == simdjson::SUCCESS) {
    [[maybe_unused]] auto e1 = doc["error"].get(reason);
    [[maybe_unused]] auto e2 = doc["line"].get(line);
  }
  if (reason == "busy") {
    stats_.busy.fetch_add(1, std::memory_order_relaxed);
  } else {
    stats_.count_error(std::string(reason));
  }
  if (line == 0 || inflight_.empty() || line < inflight_.front().line_no) return;
  const std::uint64_t at = line - inflight_.front().line_no;
  if (at < inflight_.size()) inflight_[at].refused = reason == "busy" ? 1 : 2;
}

void ProducerConnection::on_ack(std::uint64_t n) {
  const std::int64_t t = steady_ns();
  std::size_t popped = 0;
  bool saw_busy = false;
  while (!inflight_.empty() && inflight_.front().line_no <= n) {
    if (settle(inflight_.front(), t)) saw_busy = true;
    inflight_.pop_front();
    ++popped;
  }
  stamp_pos_ -= std::min(stamp_pos_, popped);
  if (popped) {
    last_progress_ = t;
    stats_.last_ack_ns.store(t, std::memory_order_relaxed);
  }
  if (saw_busy) {
    busy_until_ = t + busy_backoff_;
    busy_backoff_ = std::min<std::int64_t>(busy_backoff_ * 2, 1000 * kMs);
  } else if (popped) {
    busy_backoff_ = 10 * kMs;
  }
}

bool ProducerConnection::settle(Entry& e, std::int64_t now) {
  if (e.refused == 0) {
    const std::int64_t sent = e.sent_ns ? e.sent_ns : now;
    stats_.latency.record(static_cast<std::uint64_t>(now - sent));
    stats_.interval.record(static_cast<std::uint64_t>(now - sent));
    stats_.acked.fetch_add(1, std::memory_order_relaxed);
    source_.set_status(e.index, EventStatus::Acked);
    remember_acked(e.index);
    return false;
  }
  if (e.refused == 1) {
    e.refused = 0;
    pending_.push_back(std::move(e));
    return true;
  }
  stats_.rejected.fetch_add(1, std::memory_order_relaxed);
  source_.set_status(e.index, EventStatus::Rejected);
  return false;
}

void ProducerConnection::remember_acked(std::uint64_t index) {
  if (recent_.size() < kRecent) {
    recent_.push_back(index);
  } else {
    recent_[recent_next_] = index;
    recent_next_ = (recent_next_ + 1) % kRecent;
  }
}

bool ProducerConnection::gave_up_waiting(std::int64_t now) {
  if (inflight_.empty() || now - last_progress_ <= give_up_) return false;
  stats_.abandoned.fetch_add(inflight_.size() + pending_.size(), std::memory_order_relaxed);
  stats_.gave_up.fetch_add(1);
  return true;
}

void ProducerConnection::reconnect() {
  disconnect();
  stats_.reconnects.fetch_add(1, std::memory_order_relaxed);
}

void ProducerConnection::disconnect() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  stats_.resent.fetch_add(inflight_.size(), std::memory_order_relaxed);
  for (auto it = inflight_.rbegin(); it != inflight_.rend(); ++it) {
    it->refused = 0;
    pending_.push_front(std::move(*it));
  }
  inflight_.clear();
  out_.clear();
  out_pos_ = 0;
  queued_bytes_ = written_bytes_ = 0;
  stamp_pos_ = 0;
  next_line_ = 0;
  in_.clear();
}

}  // namespace pm::loadgen

#include "daemon/loadgen_connection.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>
#include <thread>

#include <simdjson.h>

#include "ingest/unix_socket.h"

namespace pm::loadgen {

namespace {

constexpr std::size_t kMaxBufferedBytes = 256 * 1024;  // written ahead of the socket at most
constexpr std::int64_t kMs = 1'000'000;

struct Entry {
  std::uint64_t index = 0;    // the event's index in the source
  std::uint64_t line_no = 0;  // its line number on the current connection
  std::uint64_t end = 0;      // offset just past its '\n' in the current connection's byte stream
  std::int64_t sent_ns = 0;   // when its last byte went into the socket
  std::uint8_t refused = 0;   // 0 no, 1 busy (send again), 2 refused for good
  std::string line;           // the line, or empty when it is the source's file_line(index)
};

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
  std::deque<Entry> inflight;  // written (or queued in `out`), not yet covered by an ack
  std::deque<Entry> pending;   // to send again: unacked at a reconnect, or refused busy
  int fd = -1;
  std::string out;             // bytes queued for the socket
  std::size_t out_pos = 0;
  std::uint64_t queued_bytes = 0, written_bytes = 0;  // of the current connection's stream
  std::size_t stamp_pos = 0;   // first inflight entry whose bytes are not all written
  std::uint64_t next_line = 0;
  std::string in;
  bool source_done = false;
  const std::int64_t period = config_.rate > 0 ? static_cast<std::int64_t>(1e9 / config_.rate) : 0;
  std::int64_t next_due = steady_ns();
  std::int64_t last_progress = next_due;
  std::int64_t busy_until = 0, busy_backoff = 10 * kMs;
  std::int64_t connect_backoff = 5 * kMs, down_since = 0;
  const std::int64_t give_up = std::chrono::duration_cast<std::chrono::nanoseconds>(config_.give_up_after).count();
  static thread_local simdjson::dom::parser parser;

  auto disconnect = [&] {
    if (fd >= 0) ::close(fd);
    fd = -1;
    stats_.resent.fetch_add(inflight.size(), std::memory_order_relaxed);
    for (auto it = inflight.rbegin(); it != inflight.rend(); ++it) {
      it->refused = 0;
      pending.push_front(std::move(*it));
    }
    inflight.clear();
    out.clear();
    out_pos = 0;
    queued_bytes = written_bytes = 0;
    stamp_pos = 0;
    next_line = 0;
    in.clear();
  };

  auto on_ack = [&](std::uint64_t n) {
    const std::int64_t t = steady_ns();
    std::size_t popped = 0;
    bool saw_busy = false;
    while (!inflight.empty() && inflight.front().line_no <= n) {
      Entry& e = inflight.front();
      if (e.refused == 0) {
        const std::int64_t sent = e.sent_ns ? e.sent_ns : t;
        stats_.latency.record(static_cast<std::uint64_t>(t - sent));
        stats_.interval.record(static_cast<std::uint64_t>(t - sent));
        stats_.acked.fetch_add(1, std::memory_order_relaxed);
        source_.set_status(e.index, EventStatus::Acked);
        if (recent_.size() < kRecent) {
          recent_.push_back(e.index);
        } else {
          recent_[recent_next_] = e.index;
          recent_next_ = (recent_next_ + 1) % kRecent;
        }
      } else if (e.refused == 1) {
        saw_busy = true;
        e.refused = 0;
        pending.push_back(std::move(e));
      } else {
        stats_.rejected.fetch_add(1, std::memory_order_relaxed);
        source_.set_status(e.index, EventStatus::Rejected);
      }
      inflight.pop_front();
      ++popped;
    }
    stamp_pos -= std::min(stamp_pos, popped);
    if (popped) {
      last_progress = t;
      stats_.last_ack_ns.store(t, std::memory_order_relaxed);
    }
    if (saw_busy) {
      busy_until = t + busy_backoff;
      busy_backoff = std::min<std::int64_t>(busy_backoff * 2, 1000 * kMs);
    } else if (popped) {
      busy_backoff = 10 * kMs;
    }
  };

  auto on_reply = [&](std::string_view r) {
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
    if (line == 0 || inflight.empty() || line < inflight.front().line_no) return;
    const std::uint64_t at = line - inflight.front().line_no;
    if (at < inflight.size()) inflight[at].refused = reason == "busy" ? 1 : 2;
  };

  for (;;) {
    std::int64_t now = steady_ns();
    unacked_.store(inflight.size() + pending.size(), std::memory_order_relaxed);
    if (fd < 0) {
      if (source_done && pending.empty()) break;
      fd = connect_unix_socket(config_.socket_path, /*nonblocking=*/true);
      if (fd < 0) {
        if (down_since == 0) down_since = now;
        if (now - down_since > give_up) {
          stats_.abandoned.fetch_add(pending.size(), std::memory_order_relaxed);
          stats_.gave_up.fetch_add(1);
          break;
        }
        std::this_thread::sleep_for(std::chrono::nanoseconds(connect_backoff));  // daemon down: retry interval
        connect_backoff = std::min<std::int64_t>(connect_backoff * 2, 200 * kMs);
        continue;
      }
      down_since = 0;
      connect_backoff = 5 * kMs;
      last_progress = now;
    }

    // Queue lines: resends first, then new events as the pacer allows.
    while (out.size() - out_pos < kMaxBufferedBytes && inflight.size() < config_.window && now >= busy_until) {
      Entry e;
      if (!pending.empty()) {
        e = std::move(pending.front());
        pending.pop_front();
      } else if (!source_done) {
        if (period > 0 && now < next_due) break;
        if (!source_.next(e.line, e.index)) {
          source_done = true;
          break;
        }
        source_.set_status(e.index, EventStatus::Sent);
        if (period > 0) {
          atomic_max(stats_.max_behind_ns, now - next_due);
          next_due += period;
        }
      } else {
        break;
      }
      e.line_no = ++next_line;
      e.sent_ns = 0;
      const std::string_view text = e.line.empty() ? source_.file_line(e.index) : std::string_view(e.line);
      out += text;
      out += '\n';
      queued_bytes += text.size() + 1;
      e.end = queued_bytes;
      inflight.push_back(std::move(e));
    }
    if (source_done && inflight.empty() && pending.empty()) break;

    pollfd p{fd, POLLIN, 0};
    if (out_pos < out.size()) p.events |= POLLOUT;
    std::int64_t wait = 100 * kMs;
    if (period > 0 && !source_done && pending.empty() && inflight.size() < config_.window) wait = std::min(wait, next_due - now);
    if (busy_until > now) wait = std::min(wait, busy_until - now);
    const int timeout_ms = wait <= 0 ? 0 : static_cast<int>((wait + kMs - 1) / kMs);
    if (::poll(&p, 1, timeout_ms) < 0) {
      if (errno == EINTR) continue;
      disconnect();
      stats_.reconnects.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    bool broken = false;
    if ((p.revents & POLLOUT) && out_pos < out.size()) {
      const ssize_t n = ::send(fd, out.data() + out_pos, out.size() - out_pos, MSG_NOSIGNAL);
      if (n > 0) {
        out_pos += static_cast<std::size_t>(n);
        written_bytes += static_cast<std::uint64_t>(n);
        const std::int64_t t = steady_ns();
        std::int64_t expected = 0;
        stats_.first_write_ns.compare_exchange_strong(expected, t);
        std::uint64_t lines = 0;
        while (stamp_pos < inflight.size() && inflight[stamp_pos].end <= written_bytes) {
          inflight[stamp_pos++].sent_ns = t;
          ++lines;
        }
        stats_.written.fetch_add(lines, std::memory_order_relaxed);
        if (out_pos == out.size()) {
          out.clear();
          out_pos = 0;
        } else if (out_pos >= kMaxBufferedBytes) {
          out.erase(0, out_pos);
          out_pos = 0;
        }
      } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        broken = true;
      }
    }
    if (!broken && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
      char buf[65536];
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) {
        in.append(buf, static_cast<std::size_t>(n));
        std::size_t start = 0;
        for (std::size_t nl; (nl = in.find('\n', start)) != std::string::npos; start = nl + 1)
          on_reply(std::string_view(in).substr(start, nl - start));
        in.erase(0, start);
      } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        broken = true;
      }
    }
    now = steady_ns();
    if (broken) {
      disconnect();
      stats_.reconnects.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (!inflight.empty() && now - last_progress > give_up) {
      stats_.abandoned.fetch_add(inflight.size() + pending.size(), std::memory_order_relaxed);
      stats_.gave_up.fetch_add(1);
      break;
    }
  }
  if (fd >= 0) ::close(fd);
  unacked_.store(0);
}

}  // namespace pm::loadgen

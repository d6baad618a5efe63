#include "ingest/server.h"

#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <stdexcept>

#include "ingest/line_splitter.h"
#include "ingest/protocol.h"
#include "ingest/unix_socket.h"
#include "repos/clock.h"

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

std::string errno_text() { return std::strerror(errno); }

// Sends everything; false when the peer is gone or stopped reading for the send timeout.
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

// Bytes of replies the producer has not read yet (queued on its side of the socket).
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

// Who is on the other end of a producer connection (SO_PEERCRED), as far as the kernel tells.
struct Server::Peer {
  std::optional<ucred> credentials;
  std::string who;  // "pid P uid U gid G", or "unknown peer"
};

struct Server::Connection {
  int fd = -1;
  Peer peer;
  std::thread thread;
  std::atomic<bool> done{false};
};

Server::Server(ServerConfig config, IngestPipeline& pipeline, IngestMetrics& metrics, std::shared_ptr<spdlog::logger> logger)
    : config_(std::move(config)), pipeline_(pipeline), metrics_(metrics), logger_(std::move(logger)) {}

Server::~Server() { stop(); }

void Server::bind_socket() {
  const std::string& path = config_.socket_path;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path)
    throw std::runtime_error("socket path '" + path + "' is empty or longer than " +
                             std::to_string(sizeof addr.sun_path - 1) + " bytes");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);

  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) throw std::runtime_error(path + " exists and is not a socket; refusing to replace it");
    // A socket file: stale if nobody accepts on it, in use otherwise.
    const int probe = connect_unix_socket(path);
    const bool in_use = probe >= 0;
    if (in_use) ::close(probe);
    if (in_use) throw std::runtime_error(path + " is in use by a running process (another pm-ingestd?)");
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      throw std::runtime_error("cannot remove stale socket " + path + ": " + errno_text());
    logger_->info("replaced stale socket file {}", path);
  }
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error("socket(): " + errno_text());
  // Create the file with no access at all, then open it up to the configured mode and group.
  const mode_t old_umask = ::umask(0777);
  const int bound = ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  const int bind_errno = errno;
  ::umask(old_umask);
  if (bound != 0) throw std::runtime_error("cannot bind " + path + ": " + std::strerror(bind_errno));
  owns_socket_file_ = true;
  if (config_.socket_group && ::chown(path.c_str(), static_cast<uid_t>(-1), *config_.socket_group) != 0)
    throw std::runtime_error("cannot set the group of " + path + ": " + errno_text());
  if (::chmod(path.c_str(), config_.socket_mode) != 0)
    throw std::runtime_error("cannot set the mode of " + path + ": " + errno_text());
  if (::listen(listen_fd_, 512) != 0) throw std::runtime_error("cannot listen on " + path + ": " + errno_text());
}

void Server::start() {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) throw std::runtime_error("eventfd(): " + errno_text());
  if (config_.inherited_fd >= 0) {
    listen_fd_ = config_.inherited_fd;
    logger_->info("listening on the socket inherited from systemd (fd {})", listen_fd_);
  } else {
    bind_socket();
    logger_->info("listening on {}", config_.socket_path);
  }
  listening_ = true;
  accept_thread_ = std::thread([this] { accept_loop(); });
}

void Server::stop() {
  if (stopping_.exchange(true)) return;
  if (wake_fd_ >= 0) {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto w = ::write(wake_fd_, &one, sizeof one);
  }
  if (accept_thread_.joinable()) accept_thread_.join();
  listening_ = false;
  reap(true);
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (owns_socket_file_) ::unlink(config_.socket_path.c_str());
  if (wake_fd_ >= 0) ::close(wake_fd_);
  listen_fd_ = wake_fd_ = -1;
}

namespace {
std::optional<ucred> peer_credentials(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return std::nullopt;
  return cred;
}
}  // namespace

bool Server::peer_allowed(const Peer& peer) const {
  if (config_.allow_uids.empty() && config_.allow_gids.empty()) return true;
  if (!peer.credentials) return false;
  const ucred& cred = *peer.credentials;
  return std::find(config_.allow_uids.begin(), config_.allow_uids.end(), cred.uid) != config_.allow_uids.end() ||
         std::find(config_.allow_gids.begin(), config_.allow_gids.end(), cred.gid) != config_.allow_gids.end();
}

void Server::reap(bool all) {
  std::list<std::unique_ptr<Connection>> finished;
  {
    std::lock_guard lock(connections_mu_);
    for (auto it = connections_.begin(); it != connections_.end();) {
      if (all || (*it)->done) {
        finished.push_back(std::move(*it));
        it = connections_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& c : finished)
    if (c->thread.joinable()) c->thread.join();
}

void Server::accept_loop() {
  pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  while (!stopping_) {
    const int ready = ::poll(fds, 2, 1000);
    reap(false);
    if (ready < 0 && errno != EINTR) {
      logger_->error("poll on the listening socket failed: {}", errno_text());
      continue;
    }
    if (fds[1].revents != 0 || stopping_) break;
    if ((fds[0].revents & POLLIN) == 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) logger_->warn("accept failed: {}", errno_text());
      continue;
    }
    admit(fd);
  }
}

void Server::refuse(int fd, const Peer& peer, const std::string& detail, const char* reason) {
  std::string reply;
  append_error(reply, RejectReason::Busy, 0, detail);
  send_all(fd, reply);
  ::close(fd);
  logger_->warn("refused a producer connection from {}: {}", peer.who, detail);
  metrics_.connections_refused(reason).Increment();
}

bool Server::take_uid_slot(const Peer& peer) {
  if (!peer.credentials) return true;
  std::lock_guard lock(connections_mu_);
  std::size_t& open = connections_per_uid_[peer.credentials->uid];
  if (config_.max_connections_per_uid > 0 && open >= config_.max_connections_per_uid) return false;
  ++open;
  return true;
}

void Server::release_uid_slot(const Peer& peer) {
  if (!peer.credentials) return;
  std::lock_guard lock(connections_mu_);
  const auto it = connections_per_uid_.find(peer.credentials->uid);
  if (it != connections_per_uid_.end() && --it->second == 0) connections_per_uid_.erase(it);
}

void Server::admit(int fd) {
  Peer peer{peer_credentials(fd), "unknown peer"};
  if (peer.credentials)
    peer.who = "pid " + std::to_string(peer.credentials->pid) + " uid " + std::to_string(peer.credentials->uid) + " gid " +
               std::to_string(peer.credentials->gid);
  if (!peer_allowed(peer)) {
    logger_->warn("refused a producer connection from {}: not in --allow-uid/--allow-gid", peer.who);
    metrics_.connections_refused("peer_credentials").Increment();
    ::close(fd);
    return;
  }
  if (open_connections_.load() >= config_.max_connections)
    return refuse(fd, peer, "too many connections (--max-connections " + std::to_string(config_.max_connections) + ")",
                  "too_many");
  if (!take_uid_slot(peer)) {
    const uid_t uid = peer.credentials->uid;
    return refuse(fd, peer,
                  "too many connections from uid " + std::to_string(uid) + " (--max-connections-per-uid " +
                      std::to_string(config_.max_connections_per_uid) + ")",
                  "too_many_per_uid");
  }
  auto connection = std::make_unique<Connection>();
  connection->fd = fd;
  connection->peer = peer;
  Connection* raw = connection.get();
  {
    std::lock_guard lock(connections_mu_);
    connections_.push_back(std::move(connection));
  }
  timeval send_timeout{static_cast<time_t>(config_.reply_timeout.count()), 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
  ++open_connections_;
  metrics_.connections_accepted.Increment();
  metrics_.producers_connected.Increment();
  raw->thread = std::thread([this, raw] {
    serve(*raw);
    ::close(raw->fd);
    release_uid_slot(raw->peer);
    --open_connections_;
    metrics_.producers_connected.Decrement();
    raw->done = true;
  });
}

void Server::serve(Connection& connection) {
  LineParser parser;
  LineSplitter splitter(config_.max_line_bytes);
  std::vector<Event> events;
  std::vector<std::uint64_t> event_lines;
  struct LineError {
    std::uint64_t line;
    RejectReason reason;
    std::string detail;
  };
  std::vector<LineError> errors;
  std::uint64_t last_line = 0, acked = 0;
  std::string replies;
  std::vector<char> buffer;
  std::int64_t received_ms = 0;

  bool reply_failed = false;  // a send failed (the producer went away, or did not read for the send timeout)
  std::function<bool()> answer;
  auto on_line = [&](std::uint64_t number, std::string_view text, bool too_long) {
    last_line = number;
    if (reply_failed) return;
    if (too_long) {
      errors.push_back({number, RejectReason::TooLong,
                        "line longer than " + std::to_string(config_.max_line_bytes) + " bytes; skipped"});
      return;
    }
    auto parsed = parser.parse(text, received_ms);
    if (auto* rejection = std::get_if<Rejection>(&parsed)) {
      errors.push_back({number, rejection->reason, std::move(rejection->detail)});
      // A chunk of bad lines is answered in parts: the replies waiting in memory stay bounded,
      // and a producer that does not read them stops being read (send blocks, up to the timeout).
      if (errors.size() >= kMaxPendingErrors && !answer()) reply_failed = true;
      return;
    }
    Event& event = std::get<Event>(parsed);
    const bool is_trade = event.type() == EventType::Trade;
    (is_trade ? metrics_.received_trades : metrics_.received_triggers).Increment();
    if (received_ms - event.event_time_ms() > config_.stale_after_ms)
      (is_trade ? metrics_.stale_trades : metrics_.stale_triggers).Increment();
    events.push_back(std::move(event));
    event_lines.push_back(number);
  };

  // Sends `replies`; false when the producer went away or did not read them for reply_timeout.
  auto send_replies = [&]() -> bool {
    if (send_all(connection.fd, replies)) return true;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      logger_->warn("closed the connection of {}: its replies were not read for {} s (--reply-timeout)", connection.peer.who,
                    config_.reply_timeout.count());
      metrics_.connections_closed("reply_timeout").Increment();
    }
    return false;
  };

  std::uint64_t pending_ack = 0;  // an ack held back while the producer is not reading its replies
  // Makes the chunk's events durable, then answers every line of the chunk. An ack alone is held
  // back while more than kUnreadRepliesForAckHold bytes of replies are unread: acks are
  // cumulative, so the producer needs only the latest, and a stream of small acks it does not
  // read would fill the socket and stop this thread from reading it.
  answer = [&]() -> bool {
    if (last_line == acked) return true;
    const SubmitResult result = pipeline_.submit(events);
    if (result != SubmitResult::Durable) {
      for (std::uint64_t line : event_lines) errors.push_back({line, RejectReason::Busy, busy_detail(result)});
      std::stable_sort(errors.begin(), errors.end(), [](const LineError& a, const LineError& b) { return a.line < b.line; });
      events.clear();
    }
    replies.clear();
    for (const auto& e : errors) {
      append_error(replies, e.reason, e.line, e.detail);
      metrics_.rejected(to_string(e.reason)).Increment();
    }
    const bool ack_only = errors.empty();
    errors.clear();
    event_lines.clear();
    acked = last_line;
    if (ack_only && unread_reply_bytes(connection.fd) > kUnreadRepliesForAckHold) {
      pending_ack = acked;
      return true;
    }
    append_ack(replies, last_line);
    pending_ack = 0;
    return send_replies();
  };
  auto send_pending_ack = [&]() -> bool {
    if (pending_ack == 0) return true;
    replies.clear();
    append_ack(replies, pending_ack);
    pending_ack = 0;
    return send_replies();
  };

  // Since when the unfinished line has been arriving; meaningful while splitter.has_partial().
  std::chrono::steady_clock::time_point partial_since{};
  auto close_for_slow_line = [&]() {
    const std::uint64_t line = splitter.lines() + 1;
    replies.clear();
    append_error(replies, RejectReason::Busy, line,
                 "line incomplete for " + std::to_string(config_.line_timeout.count()) +
                     " s (--line-timeout); connection closed, not stored: send it again");
    if (pending_ack != 0) append_ack(replies, pending_ack);
    metrics_.rejected(to_string(RejectReason::Busy)).Increment();
    metrics_.connections_closed("line_timeout").Increment();
    logger_->warn("closed the connection of {}: line {} incomplete for {} s (--line-timeout)", connection.peer.who, line,
                  config_.line_timeout.count());
    send_replies();
  };
  auto poll_timeout_ms = [&]() -> int {
    int timeout = pending_ack != 0 ? kAckHoldRecheckMs : -1;  // an ack held back: look again soon
    if (splitter.has_partial()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(partial_since + config_.line_timeout -
                                                                              std::chrono::steady_clock::now());
      const int left_ms = static_cast<int>(std::clamp<std::int64_t>(left.count() + 1, 0, 60'000));
      timeout = timeout < 0 ? left_ms : std::min(timeout, left_ms);
    }
    return timeout;
  };

  pollfd fds[2] = {{connection.fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  for (;;) {
    const int ready = ::poll(fds, 2, poll_timeout_ms());
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents != 0) {  // shutting down: what was answered stays answered
      send_pending_ack();
      break;
    }
    if (ready == 0) {
      if (splitter.has_partial() && std::chrono::steady_clock::now() >= partial_since + config_.line_timeout) {
        close_for_slow_line();
        break;
      }
      if (unread_reply_bytes(connection.fd) <= kUnreadRepliesForAckHold && !send_pending_ack()) break;
      continue;
    }
    if (const std::size_t chunk = read_chunk(open_connections_.load()); buffer.size() != chunk)
      std::vector<char>(chunk).swap(buffer);
    const ssize_t n = ::read(connection.fd, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      break;
    }
    received_ms = now_epoch_ms();
    if (n == 0) {  // the producer finished sending (it may still read our replies)
      splitter.finish(on_line);
      if (!reply_failed && answer()) send_pending_ack();
      break;
    }
    const std::uint64_t lines_before = splitter.lines();
    const bool partial_before = splitter.has_partial();
    splitter.feed(std::string_view(buffer.data(), static_cast<std::size_t>(n)), on_line);
    if (splitter.has_partial() && (!partial_before || splitter.lines() != lines_before))
      partial_since = std::chrono::steady_clock::now();  // the unfinished line began in this read
    // A producer that keeps the socket busy with one endless line never lets poll() time out.
    if (splitter.has_partial() && std::chrono::steady_clock::now() >= partial_since + config_.line_timeout) {
      if (!reply_failed && answer()) close_for_slow_line();
      break;
    }
    if (reply_failed || !answer()) break;
  }
}

}  // namespace pm

#include "ingest/server/server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "ingest/server/connection_session.h"
#include "ingest/server/protocol.h"
#include "ingest/server/unix_socket.h"
#include "repos/util/thread_name.h"

namespace pm {

namespace {

std::string errno_text() { return std::strerror(errno); }

}  // namespace

// Who is on the other end of a producer connection (SO_PEERCRED), as far as the kernel tells.
struct Server::Peer {
  std::optional<ucred> credentials;
  std::string who;  // "pid P uid U gid G", or "unknown peer"
};

struct Server::Connection {
  int fd = -1;  // -1 once closed (under connections_mu_)
  Peer peer;
  std::thread thread;
  std::atomic<bool> done{false};
  std::atomic<std::int64_t> sending_since{0};  // ConnectionSession's: when its send under way began
};

Server::Server(ServerConfig config, IngestPipeline& pipeline, IngestMetrics& metrics, std::shared_ptr<spdlog::logger> logger)
    : config_(std::move(config)), pipeline_(pipeline), metrics_(metrics), logger_(std::move(logger)) {}

Server::~Server() { stop(); }

void Server::bind_socket() {
  const std::string& path = config_.socket_path;
  sockaddr_un addr;
  if (!unix_socket_address(path, addr))
    throw std::runtime_error("socket path '" + path + "' is empty or longer than " +
                             std::to_string(sizeof addr.sun_path - 1) + " bytes");

  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) throw std::runtime_error(path + " exists and is not a socket; refusing to replace it");
    // A socket file: stale only if nobody listens on it (or it is gone meanwhile); in use if it
    // accepts. Any other answer (a full backlog: EAGAIN; no write permission: EACCES) tells
    // nothing: the file is left alone.
    const int probe = probe_unix_socket(path);
    if (probe == 0) throw std::runtime_error(path + " is in use by a running process (another pm-ingestd?)");
    if (probe != ECONNREFUSED && probe != ENOENT)
      throw std::runtime_error("cannot tell whether the socket " + path + " is in use (connect: " + std::strerror(probe) +
                               "); refusing to replace it");
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      throw std::runtime_error("cannot remove stale socket " + path + ": " + errno_text());
    logger_->info("replaced stale socket file {}", path);
  }
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error("socket(): " + errno_text());
  // Create the file with no access at all, then open it up to the configured mode and group. Linux
  // gives the file the socket's own mode (less the umask): set here, not through umask(), which is
  // the whole process's (the archiver and the writer already create files on other threads).
  if (::fchmod(listen_fd_, 0) != 0) throw std::runtime_error("cannot set the mode of the socket: " + errno_text());
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw std::runtime_error("cannot bind " + path + ": " + errno_text());
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
  spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (config_.inherited_fd >= 0) {
    listen_fd_ = config_.inherited_fd;
    logger_->info("listening on the socket inherited from systemd (fd {})", listen_fd_);
    give_inherited_socket_its_group();
  } else {
    bind_socket();
    logger_->info("listening on {}", config_.socket_path);
  }
  record_socket_file();
  listening_ = true;
  accept_thread_ = std::thread([this] { accept_loop(); });
}

// systemd's RuntimeDirectory= re-owns everything under the directory, files included, to the
// service's user and group whenever it finds the directory owned by someone else: when
// pm-ingestd.socket created /run/pm-ingestd (root's) before the service's first start, the
// socket's file became pm-ingestd:pm-ingestd and every producer of pm-producers was refused.
// A file that carries the daemon's own user and group (what that re-owning leaves) is given
// --socket-group; one of another group is the socket unit's SocketGroup=, set on purpose, and is
// left as it is (an error names both, when they differ). The file is opened once (O_PATH, not
// following a link) and changed through that descriptor: what was checked is what is changed.
void Server::give_inherited_socket_its_group() {
  if (!config_.socket_group) return;
  const std::string path = SocketFile::bound_path(listen_fd_);
  if (path.empty()) return;  // abstract or unnamed: no file
  const int file = ::open(path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (file < 0) return;  // record_socket_file() reports an unreadable file
  struct stat st {};
  const gid_t wanted = *config_.socket_group;
  if (::fstat(file, &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_gid == wanted) {
    ::close(file);
    return;
  }
  if (st.st_uid != ::geteuid() || st.st_gid != ::getegid()) {
    logger_->error("the inherited socket file {} has group {}, not --socket-group's {}: left as the socket unit made it "
                   "(SocketGroup= and --socket-group must name the same group; producers of group {} are refused)",
                   path, st.st_gid, wanted, wanted);
  } else if (::fchownat(file, "", static_cast<uid_t>(-1), wanted, AT_EMPTY_PATH) == 0) {
    logger_->warn("the inherited socket file {} had group {} (the service's own: RuntimeDirectory= re-owned it), not "
                  "--socket-group's {}: set to {}",
                  path, st.st_gid, wanted, wanted);
  } else {
    logger_->error("the inherited socket file {} has group {}, not --socket-group's {}, and cannot be given it ({}): "
                   "producers of group {} are refused until it is (chgrp {} {})",
                   path, st.st_gid, wanted, errno_text(), wanted, wanted, path);
  }
  ::close(file);
}

void Server::record_socket_file() {
  const std::string path = owns_socket_file_ ? config_.socket_path : SocketFile::bound_path(listen_fd_);
  if (path.empty()) return;  // an abstract or unnamed inherited socket: no file to lose
  if (!socket_file_.record(path))
    logger_->warn("cannot read the socket file {} ({}); its removal or replacement will not be noticed", path,
                  errno_text());
}

void Server::stop() {
  if (stopping_.exchange(true)) return;
  if (wake_fd_ >= 0) {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto w = ::write(wake_fd_, &one, sizeof one);
  }
  if (accept_thread_.joinable()) accept_thread_.join();
  listening_ = false;
  cut_stalled_connections();
  reap(true);
  // The file is checked and removed while the socket still listens: a daemon starting on the path
  // meanwhile finds it in use and refuses, where after the close it would take the file for stale,
  // replace it, and see its own file removed by this unlink.
  if (owns_socket_file_ && socket_file_.still_ours()) ::unlink(config_.socket_path.c_str());
  else if (owns_socket_file_) logger_->warn("{} no longer leads to this daemon's socket (removed or replaced); not removing it",
                                         config_.socket_path);
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (spare_fd_ >= 0) ::close(spare_fd_);
  listen_fd_ = wake_fd_ = spare_fd_ = -1;
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

// Each session was woken to send its last ack and end. One whose producer reads none of its
// replies stays blocked in send() up to --reply-timeout (30 s), past --shutdown-timeout (10 s):
// every stop then ended in the forced exit, the writer never stopped. A send that has waited
// longer than a short grace (ServerConfig::stop_grace) has its socket shut down, which ends it (what was acked stays
// durable; the producer sends the lines it has no ack for again). A session still in the log's
// fdatasync (a slow disk) is left to finish and send its ack; the forced exit bounds that wait.
void Server::cut_stalled_connections() {
  const auto grace = std::min<std::chrono::nanoseconds>(config_.reply_timeout, config_.stop_grace);
  for (;;) {
    {
      std::lock_guard lock(connections_mu_);
      const std::int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
      bool all_done = true;
      for (const auto& c : connections_) {
        if (c->done) continue;
        all_done = false;
        const std::int64_t since = c->sending_since;
        if (since != 0 && now - since >= grace.count() && c->fd >= 0) ::shutdown(c->fd, SHUT_RDWR);
      }
      if (all_done) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // at stop only
  }
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
  name_this_thread("pm-accept");
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
      if (errno == EMFILE || errno == ENFILE) refuse_without_fd(errno);
      else if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) logger_->warn("accept failed: {}", errno_text());
      continue;
    }
    admit(fd);
  }
}

// No descriptor left for the pending connection (the open-file limit): it would stay in the
// backlog, poll() would report it at once, again and again, a busy loop with a warning each time,
// and the producer would hear nothing. The spare descriptor is given up to take the connection and
// answer `busy` line 0, then taken again. Without a spare, the loop pauses before it tries again.
void Server::refuse_without_fd(int accept_errno) {
  if (spare_fd_ >= 0) ::close(spare_fd_);
  const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) {
    const Peer peer = describe_peer(fd);
    if (!peer_allowed(peer)) {  // as admit() does: a disallowed peer learns nothing of the daemon
      logger_->warn("refused a producer connection from {}: not in --allow-uid/--allow-gid", peer.who);
      metrics_.connections_refused("peer_credentials").Increment();
      ::close(fd);
    } else {
      refuse(fd, peer,
             std::string("no file descriptor left for another connection (") + std::strerror(accept_errno) +
                 "; the open-file limit: ulimit -n, LimitNOFILE=)",
             "no_fd");
    }
  }
  spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || spare_fd_ < 0) {
    if (!paused_without_fd_)
      logger_->warn("no file descriptor left to answer a producer connection ({}); accepting again every 100 ms",
                    std::strerror(accept_errno));
    paused_without_fd_ = true;
    pollfd wake{wake_fd_, POLLIN, 0};
    ::poll(&wake, 1, 100);  // stop() still ends the wait
  } else {
    paused_without_fd_ = false;
  }
}

// Counted before the reply goes out: whoever sees the refusal (the producer) finds it counted.
void Server::refuse(int fd, const Peer& peer, const std::string& detail, const char* reason) {
  metrics_.connections_refused(reason).Increment();
  logger_->warn("refused a producer connection from {}: {}", peer.who, detail);
  std::string reply;
  append_error(reply, RejectReason::Busy, 0, detail);
  send_all(fd, reply);
  ::close(fd);
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
  const Peer peer = describe_peer(fd);
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
  start_connection(fd, peer);
}

Server::Peer Server::describe_peer(int fd) {
  Peer peer{peer_credentials(fd), "unknown peer"};
  if (peer.credentials)
    peer.who = "pid " + std::to_string(peer.credentials->pid) + " uid " + std::to_string(peer.credentials->uid) + " gid " +
               std::to_string(peer.credentials->gid);
  return peer;
}

void Server::start_connection(int fd, const Peer& peer) {
  timeval send_timeout{static_cast<time_t>(config_.reply_timeout.count()), 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
  ++open_connections_;
  metrics_.producers_connected.Increment();
  const Connection* started = nullptr;
  try {
    auto connection = std::make_unique<Connection>();
    connection->fd = fd;
    connection->peer = peer;
    Connection* raw = connection.get();
    {
      std::lock_guard lock(connections_mu_);
      connections_.push_back(std::move(connection));
    }
    started = raw;
    raw->thread = std::thread([this, raw] { serve(*raw); });
  } catch (const std::exception& e) {  // no thread or no memory for it (a pids limit): refused, not fatal
    forget_connection(peer, started);
    refuse(fd, peer, std::string("no thread could be started for the connection: ") + e.what(), "no_thread");
    return;
  }
  metrics_.connections_accepted.Increment();
}

void Server::forget_connection(const Peer& peer, const Connection* connection) {
  release_uid_slot(peer);
  --open_connections_;
  metrics_.producers_connected.Decrement();
  std::lock_guard lock(connections_mu_);
  std::erase_if(connections_, [&](const std::unique_ptr<Connection>& c) { return c.get() == connection; });
}

void Server::serve(Connection& connection) {
  name_this_thread("pm-conn");
  const SessionLimits limits{config_.max_line_bytes, config_.stale_after_ms, config_.reply_timeout, config_.line_timeout};
  try {
    ConnectionSession(connection.fd, connection.peer.who, limits, pipeline_, metrics_, *logger_, wake_fd_, open_connections_,
                      connection.sending_since)
        .run();
  } catch (const std::exception& e) {  // out of memory in the session: this connection ends, the daemon does not
    logger_->error("connection from {} ended: {}", connection.peer.who, e.what());
  }
  {
    std::lock_guard lock(connections_mu_);  // cut_stalled_connections() may shut it down meanwhile
    ::close(connection.fd);
    connection.fd = -1;
  }
  release_uid_slot(connection.peer);
  --open_connections_;
  metrics_.producers_connected.Decrement();
  connection.done = true;
}

}  // namespace pm

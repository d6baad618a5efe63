#pragma once
// Server: the producers' side of pm-ingestd. Owns the listening Unix stream socket (its own, or one
// inherited from systemd socket activation) and one thread per producer connection.
//
// Each connection reads whatever bytes are available (up to 256 KiB at a time while up to 64
// producers are connected, less with more, never below 64 KiB), splits them into numbered lines, parses and
// validates each (protocol.h), submits the valid events of the chunk to the pipeline in one call
// (they become durable together through the log's group commit), then replies: the error lines of
// the chunk in line order, then one cumulative {"ack":N}. If the pipeline cannot make the events
// durable (budget, disk full, I/O error, shutting down) their lines get `busy` errors instead; an
// ack never covers an event that is not durable. Bad input never closes the connection.
//
// Reply memory is bounded: a chunk whose bad lines reach kMaxPendingErrors is answered in parts
// (its events so far made durable and acked, its errors sent), so a flood of bad lines holds at
// most that many error entries per connection; sending blocks while the producer does not read,
// which stops reading from it, and a send blocked for reply_timeout (30 s) closes the connection
// (what it had acked stays durable). An ack alone is held back while more than
// kUnreadRepliesForAckHold bytes of replies are unread, and only the latest is sent once the
// producer reads: a producer that reads its acks late is never stopped by them.
//
// Slow producers: a line left incomplete for line_timeout (30 s, counted from its first byte,
// however slowly the rest trickles in; the time the connection's thread spent answering the lines
// before it, a slow log sync or reply send, is not counted) gets a `busy` error naming it and the connection is closed;
// the lines before it were answered already. An idle connection with no partial line is never
// closed. max_connections_per_uid (0: no limit) keeps one user from taking every connection:
// a producer past it gets one `busy` line 0 and is closed, like one past max_connections.
//
// Ownership and threads:
// - The Server owns the listening socket (and the socket file it created), an eventfd that wakes
//   every thread at stop(), the accept thread, and one thread per producer connection with its
//   socket. Each connection's conversation is a ConnectionSession (connection_session.h) on that
//   thread; the Server closes the socket after it and releases the peer's per-uid slot.
// - start() and stop() from one controlling thread; the getters from any thread. The accept
//   thread admits connections and joins finished ones (reap); connection threads touch only
//   their own Connection, the pipeline, the metrics, and the per-uid counts under connections_mu_.
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/logger.h>

#include "ingest/server/connection_session.h"
#include "ingest/server/ingest_pipeline.h"
#include "ingest/server/socket_file.h"
#include "metrics/ingest_metrics.h"

namespace pm {

inline constexpr int kSendTimeoutSeconds = 30;  // the default of ServerConfig::reply_timeout
inline constexpr int kLineTimeoutSeconds = 30;  // the default of ServerConfig::line_timeout

struct ServerConfig {
  std::string socket_path;            // used when no socket is inherited
  int inherited_fd = -1;              // a listening socket from systemd (LISTEN_FDS), or -1
  mode_t socket_mode = 0660;
  std::optional<gid_t> socket_group;  // chgrp of the socket file
  std::vector<uid_t> allow_uids;      // empty with allow_gids empty: any peer may connect
  std::vector<gid_t> allow_gids;
  std::size_t max_line_bytes = 1 << 20;
  std::size_t max_connections = 1024;
  std::size_t max_connections_per_uid = 0;  // 0: no limit per peer uid
  std::int64_t stale_after_ms = 300'000;  // G1: events older than this on arrival are counted
  std::chrono::seconds reply_timeout{kSendTimeoutSeconds};  // a send blocked this long closes the connection
  std::chrono::seconds line_timeout{kLineTimeoutSeconds};    // a line incomplete this long closes the connection
  // At stop(), a reply send blocked this long (or reply_timeout, if shorter) is cut; the daemon
  // keeps it well inside its --shutdown-timeout.
  std::chrono::milliseconds stop_grace{2000};
};

class Server {
 public:
  Server(ServerConfig config, IngestPipeline& pipeline, IngestMetrics& metrics, std::shared_ptr<spdlog::logger> logger);
  ~Server();

  // Binds (or adopts) the socket and starts accepting. Throws std::runtime_error with a message
  // naming the path and the reason (in use by a running daemon, not a socket, permission, ...).
  // A socket file already at the path is replaced only when nobody listens on it (connect:
  // ECONNREFUSED); any other failure of the probe (which does not wait) refuses, naming the error.
  void start();
  // Stops accepting; each connection finishes the chunk it is handling (its ack included) and is
  // closed, except that a reply send blocked for stop_grace (or reply_timeout, if shorter) on a
  // producer that does not read is cut. Joins every thread. Removes the socket file it created,
  // unless that path now holds another file (another daemon's socket, say).
  void stop();

  bool listening() const { return listening_.load(); }
  // Whether the socket's file (its path, also an inherited socket's) still leads to this daemon's
  // socket: false once it was removed or replaced, when producers can no longer reach it. Any thread.
  bool socket_file_ours() const { return socket_file_.still_ours(); }
  // The listening socket's path ("" for an inherited abstract or unnamed socket). After start().
  const std::string& socket_file_path() const { return socket_file_.path(); }
  std::size_t connections() const { return open_connections_.load(); }
  const std::string& socket_path() const { return config_.socket_path; }

 private:
  struct Connection;
  struct Peer;
  void bind_socket();
  void record_socket_file();  // start(): socket_file_ from the bound path
  // start(), an inherited socket: gives its file --socket-group when it carries the daemon's own
  // user and group instead (systemd's RuntimeDirectory= re-owning it; see the definition); a file
  // of another group is left, with an error. Logs what it did or could not do; never throws.
  void give_inherited_socket_its_group();
  void accept_loop();  // the accept thread
  // Checks the peer and the limits, then starts a connection thread or refuses. Accept thread.
  void admit(int fd);
  void refuse_without_fd(int accept_errno);
  static Peer describe_peer(int fd);
  void refuse(int fd, const Peer& peer, const std::string& detail, const char* reason);
  // Registers the connection (its uid slot already taken) and starts its thread. Accept thread.
  void start_connection(int fd, const Peer& peer);
  // Undoes start_connection's counting for a connection whose thread could not start (`connection`
  // null when it was never recorded).
  void forget_connection(const Peer& peer, const Connection* connection);
  // Runs the connection's session, then closes it and releases its slots. The connection's thread.
  void serve(Connection& connection);
  bool peer_allowed(const Peer& peer) const;
  // Counts a connection of the peer's uid; false (nothing counted) when the uid is at its limit.
  // REQUIRES: connections_mu_ not held (both take it).
  bool take_uid_slot(const Peer& peer);
  void release_uid_slot(const Peer& peer);
  // At stop(), after the sessions were woken: waits until every session is done, shutting down the
  // socket of one whose reply send has waited past a short grace (a producer that reads none of
  // its replies holds its session in send()).
  // REQUIRES: connections_mu_ not held.
  void cut_stalled_connections();
  // Joins the finished connection threads (all of them at stop()). REQUIRES: connections_mu_ not held.
  void reap(bool all);

  const ServerConfig config_;
  IngestPipeline& pipeline_;
  IngestMetrics& metrics_;
  std::shared_ptr<spdlog::logger> logger_;

  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: readable once stop() begins
  int spare_fd_ = -1;  // /dev/null, given up to accept (and refuse) a connection when no fd is left
  bool paused_without_fd_ = false;  // accept thread only: said once per spell without a spare
  bool owns_socket_file_ = false;
  SocketFile socket_file_;  // recorded by start(), before the accept thread runs
  std::thread accept_thread_;
  std::mutex connections_mu_;
  std::list<std::unique_ptr<Connection>> connections_;  // guarded by connections_mu_
  std::map<uid_t, std::size_t> connections_per_uid_;    // guarded by connections_mu_
  std::atomic<bool> listening_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> open_connections_{0};
};

}  // namespace pm

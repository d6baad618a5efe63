#include "client/producer_client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <simdjson.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "client/reply_parser.h"

namespace pm::client {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kMaxBuffered = 256 * 1024;  // bytes queued for the socket at once
constexpr std::size_t kMaxReply = 1 << 20;  // longest reply line read (the Python client's limit too)
constexpr std::string_view kHelloRefused = "hello refused: ";  // the detail of every line a refused hello fails

struct Entry {
  std::string text;
  ProducerClient::Callback done;
  ProducerClient::WrittenCallback on_written;
  std::uint64_t seq = 0;  // submission order (send() order): 1, 2, ...
  int attempts = 0;
  Clock::time_point first_written{};
  Clock::time_point first_busy{};  // its first `busy` reply (none: epoch)
  std::uint64_t end = 0;  // offset in the connection's output just after the line
  // Written on a connection that broke before its reply was read: the daemon may have stored it.
  bool maybe_durable = false;
  bool gone = false;      // in written_: resolved, or moved to busy_ (a hole keeps line numbers dense)
};

// Outcomes decided on the I/O thread and not yet handed to their callbacks (see publish()).
struct Settled {
  std::vector<std::pair<ProducerClient::Callback, LineOutcome>> outcomes;
  std::uint64_t acked = 0, rejected = 0, unacknowledged = 0;
  std::map<std::string, std::uint64_t> rejected_by_reason;
};

// "60 s", or "500 ms" for a time that is not whole seconds.
std::string duration_text(std::chrono::milliseconds d) {
  return d.count() % 1000 == 0 ? std::to_string(d.count() / 1000) + " s" : std::to_string(d.count()) + " ms";
}

int connect_socket(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) return -1;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::chrono::milliseconds doubled(std::chrono::milliseconds initial, std::chrono::milliseconds max, int times) {
  std::chrono::milliseconds d = initial;
  for (int i = 1; i < times && d < max; ++i) d *= 2;
  return std::min(d, max);
}

}  // namespace

class ProducerClient::Impl {
 public:
  explicit Impl(ProducerOptions options);
  ~Impl();
  void send_all(std::vector<Outgoing> lines);
  bool flush(std::chrono::milliseconds timeout);
  void close(std::chrono::milliseconds timeout);
  ProducerStats stats() const {
    std::lock_guard lock(mu_);
    return stats_;
  }

 private:
  void ring();  // wakes the I/O thread from poll(); any thread

  // The I/O thread and its steps. REQUIRES: I/O thread, for every function below.
  void run();
  void connect_now(Clock::time_point now);
  void disconnect(bool lines_read = true);
  void take_due(Clock::time_point now);
  void queue_writes(Clock::time_point now);
  void in_submission_order();  // sorts to_send_ by seq
  bool write_out();
  bool read_in();
  void handle(const Reply& reply);
  void handle_error(const Reply& reply);
  void refuse_hello(const std::string& detail);
  // After the socket is closed: what was not acked goes again. `lines_read`: the daemon may have
  // read (and stored) the lines written on it; false when it read none (the connection or its
  // hello refused with `busy`).
  void disconnect_state(bool lines_read = true);
  Entry* written_entry(std::uint64_t line);  // a line of this connection not yet resolved, or null
  void resolve(Entry& e, LineOutcome::Status status, std::string reason, std::string detail);
  void publish();  // counts, then callbacks, then room for send(): the outcomes resolved so far
  // Runs a caller's callback: one that throws must neither end the I/O thread (std::terminate,
  // with every unresolved line in memory) nor skip the callbacks after it. Counted, then dropped.
  template <class F, class... Args>
  void call_back(F& f, Args&&... args) noexcept {
    if (!f) return;
    try {
      f(std::forward<Args>(args)...);
    } catch (...) {
      std::lock_guard lock(mu_);
      ++stats_.callback_errors;
    }
  }
  void give_up_all(const std::string& why);  // every unresolved line Unacknowledged, for `why`
  void give_up_all(const std::function<void(Entry&)>& fail);  // every unresolved line, as `fail` resolves it
  bool outstanding() const { return !written_.empty() || !to_send_.empty() || !busy_.empty(); }
  int poll_timeout_ms(Clock::time_point now) const;
  void count(const std::function<void(ProducerStats&)>& f) {
    std::lock_guard lock(mu_);
    f(stats_);
  }

  const ProducerOptions options_;
  mutable std::mutex mu_;
  std::condition_variable changed_;  // room for send(), lines resolved
  std::deque<Entry> incoming_;       // guarded by mu_: sent, not yet taken by the I/O thread
  std::size_t unresolved_ = 0;       // guarded by mu_
  bool stopping_ = false;            // guarded by mu_
  bool io_asleep_ = false;           // guarded by mu_: the I/O thread is (about to be) in poll()
  std::string hello_refusal_;        // guarded by mu_: set once the daemon refused the hello
  std::once_flag joined_;
  ProducerStats stats_;              // guarded by mu_
  const int wake_fd_;
  std::thread thread_;
  std::thread::id io_thread_;  // thread_'s id, set once in the constructor: flush() reads it while close() joins

  // I/O thread only.
  int fd_ = -1;
  std::string out_;
  std::size_t out_pos_ = 0;
  std::uint64_t out_base_ = 0;  // bytes of this connection's output dropped from out_
  std::string in_;
  std::deque<Entry> written_;               // lines first_written_line_, first_written_line_ + 1, ...
  std::uint64_t first_written_line_ = 1;    // line number of written_.front() on this connection
  std::deque<Entry> to_send_;               // in submission order (seq)
  // Refused with `busy`: sent again, in submission order ahead of every line not written yet, once
  // the pause is over. Nothing is written until then (paused_until_).
  std::vector<Entry> busy_;
  Clock::time_point paused_until_{};
  int busy_pauses_ = 0;                     // pauses since the last ack of a line: the next one doubles
  std::uint64_t next_seq_ = 0;
  std::uint64_t line_no_ = 0;
  bool hello_sent_ = false;
  bool hello_accepted_ = false;  // on some connection: lines written since may be durable
  std::uint64_t stamped_line_ = 0;  // the last line of this connection known to be written
  int connect_failures_ = 0;
  bool connected_once_ = false;
  Clock::time_point next_connect_{};
  Clock::time_point last_progress_ = Clock::now();
  ReplyParser parser_;
  Settled settled_;
};

static ProducerOptions checked(ProducerOptions o) {
  static const char* const kFormats[] = {"pm-ingestd", "clob-ws-market", "data-api-trades", "clob-rest-trades"};
  if (std::find(std::begin(kFormats), std::end(kFormats), o.format) == std::end(kFormats))
    throw std::invalid_argument("ProducerOptions::format: unknown format '" + o.format +
                                "' (pm-ingestd, clob-ws-market, data-api-trades, clob-rest-trades)");
  o.max_in_flight = std::max<std::size_t>(o.max_in_flight, 1);
  // A backoff of 0 would spin the I/O thread (it doubles from 0, and poll() waits 0 ms); a
  // negative one overflows. give_up_after 0 means never.
  const auto positive = [](std::chrono::milliseconds initial, std::chrono::milliseconds max, const char* initial_name,
                           const char* max_name) {
    if (initial.count() <= 0)
      throw std::invalid_argument(std::string("ProducerOptions::") + initial_name + " must be above 0 ms, got " +
                                  std::to_string(initial.count()));
    if (max < initial)
      throw std::invalid_argument(std::string("ProducerOptions::") + max_name + " (" + std::to_string(max.count()) +
                                  " ms) must be at least " + initial_name + " (" + std::to_string(initial.count()) + " ms)");
  };
  positive(o.reconnect_initial, o.reconnect_max, "reconnect_initial", "reconnect_max");
  positive(o.busy_initial, o.busy_max, "busy_initial", "busy_max");
  if (o.give_up_after.count() < 0)
    throw std::invalid_argument("ProducerOptions::give_up_after must be 0 (never) or above, got " +
                                std::to_string(o.give_up_after.count()) + " ms");
  return o;
}

ProducerClient::Impl::Impl(ProducerOptions options)
    : options_(checked(std::move(options))), wake_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  thread_ = std::thread([this] { run(); });
  io_thread_ = thread_.get_id();
}

ProducerClient::Impl::~Impl() {
  close(options_.give_up_after.count() > 0 ? options_.give_up_after : std::chrono::hours(24));
  ::close(wake_fd_);
}

// Whether the daemon would take `line` for a hello were it line 1 of a connection (docs/protocol.md:
// an object with a "hello" member and no "type" member, however its key is spelled: it parses line 1
// when it holds "hello" in quotes or \u006, the escape of any of its letters). Resent lines are
// numbered from 1 again on a new connection, so such a line could switch the connection's format
// and every later line be acknowledged without being stored. The parser keeps its buffers small
// between lines (a thread that once checked a 1 MiB line held ~15 MiB).
static bool reads_as_hello(const std::string& line) {
  if (line.find("\"hello\"") == std::string::npos && line.find("\\u006") == std::string::npos) return false;
  thread_local simdjson::dom::parser parser;
  simdjson::dom::object object;
  const bool hello = parser.parse(line).get_object().get(object) == simdjson::SUCCESS &&
                     object.at_key("hello").error() == simdjson::SUCCESS && object.at_key("type").error() != simdjson::SUCCESS;
  if (parser.capacity() > (64u << 10)) parser = simdjson::dom::parser{};
  return hello;
}

// Why `line` cannot be sent as one protocol line ("" when it can).
static std::string unsendable(const std::string& line) {
  if (line.find('\n') != std::string::npos) return "the line contains a newline: it would be several lines to the daemon";
  if (reads_as_hello(line))
    return "a hello line (an object with a \"hello\" member and no \"type\"): the client sends the hello itself on every "
           "connection (ProducerOptions::format)";
  return "";
}

void ProducerClient::Impl::send_all(std::vector<Outgoing> lines) {
  std::vector<std::string> refused;
  refused.reserve(lines.size());
  for (const Outgoing& o : lines) refused.push_back(unsendable(o.line));
  std::vector<std::pair<Callback, LineOutcome>> resolved;  // lines resolved without sending: called after the lock
  bool wake = false;
  {
    std::unique_lock lock(mu_);
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (!refused[i].empty()) {  // never sent: resolved at once, without waiting for room
        ++stats_.sent;
        ++stats_.rejected, ++stats_.rejected_by_reason["invalid"];
        LineOutcome outcome;
        outcome.status = LineOutcome::Status::Rejected;
        outcome.reason = "invalid";
        outcome.detail = std::move(refused[i]);
        resolved.emplace_back(std::move(lines[i].done), std::move(outcome));
        continue;
      }
      if (unresolved_ >= options_.max_in_flight && wake) {
        // The window is full: the lines queued so far must go out (and be acked) to free it.
        lock.unlock();
        ring();
        lock.lock();
        wake = false;
      }
      changed_.wait(lock, [&] { return unresolved_ < options_.max_in_flight || stopping_; });
      ++stats_.sent;
      Outgoing& o = lines[i];
      const bool failed_hello = !hello_refusal_.empty();
      if (stopping_ || failed_hello) {
        LineOutcome outcome;
        outcome.status = stopping_ ? LineOutcome::Status::Unacknowledged : LineOutcome::Status::Rejected;
        outcome.reason = stopping_ ? "closed" : "schema";
        outcome.detail = stopping_ ? "" : hello_refusal_;
        if (outcome.status == LineOutcome::Status::Rejected) ++stats_.rejected, ++stats_.rejected_by_reason[outcome.reason];
        else ++stats_.unacknowledged;
        resolved.emplace_back(std::move(o.done), std::move(outcome));
        continue;
      }
      ++unresolved_;
      // The I/O thread takes every queued line each turn: it needs waking only when it sleeps in
      // poll(), and then once.
      wake = wake || io_asleep_;
      io_asleep_ = false;
      incoming_.push_back(Entry{std::move(o.line), std::move(o.done), std::move(o.on_written)});
    }
  }
  if (wake) ring();
  for (auto& [done, outcome] : resolved) call_back(done, outcome);
}

void ProducerClient::Impl::ring() {
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

bool ProducerClient::Impl::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  // From a callback (the I/O thread): the lines resolve on this thread, and the one whose callback
  // runs leaves unresolved_ only after it, so waiting could only time out.
  if (std::this_thread::get_id() == io_thread_) return unresolved_ == 0;
  return changed_.wait_for(lock, timeout, [&] { return unresolved_ == 0; });
}

void ProducerClient::Impl::close(std::chrono::milliseconds timeout) {
  flush(timeout);
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  ring();
  std::call_once(joined_, [this] { thread_.join(); });
}

void ProducerClient::Impl::run() {
  for (;;) {
    {
      std::lock_guard lock(mu_);
      io_asleep_ = false;
      if (stopping_) break;
      while (!incoming_.empty()) {
        to_send_.push_back(std::move(incoming_.front()));
        to_send_.back().seq = ++next_seq_;
        incoming_.pop_front();
      }
    }
    const Clock::time_point now = Clock::now();
    if (fd_ < 0 && outstanding() && now >= next_connect_) connect_now(now);
    take_due(now);
    if (fd_ >= 0) queue_writes(now);
    if (!outstanding()) last_progress_ = now;
    if (options_.give_up_after.count() > 0 && now - last_progress_ > options_.give_up_after) {
      give_up_all("no acknowledgement for " + duration_text(options_.give_up_after));
      // Replies still to come on this connection are for the lines just given up: matched by line
      // number, they would resolve the next lines (an ack for a line never stored). The next
      // lines go on a new connection, numbered from 1.
      if (fd_ >= 0) disconnect();
      publish();
      last_progress_ = now;
    }
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {fd_, static_cast<short>(POLLIN | (out_pos_ < out_.size() ? POLLOUT : 0)), 0}};
    int timeout_ms = poll_timeout_ms(now);
    {
      std::lock_guard lock(mu_);
      if (incoming_.empty() && !stopping_) io_asleep_ = true;
      else timeout_ms = 0;
    }
    if (::poll(fds, fd_ >= 0 ? 2 : 1, timeout_ms) < 0 && errno != EINTR) {
      std::lock_guard lock(mu_);
      stopping_ = true;  // send() resolves new lines at once from now on
      break;
    }
    if (fds[0].revents & POLLIN) {
      std::uint64_t drained = 0;
      [[maybe_unused]] const ssize_t n = ::read(wake_fd_, &drained, sizeof drained);
    }
    if (fd_ < 0) continue;
    bool ok = true;
    if (fds[1].revents & POLLOUT) ok = write_out();
    // After a failed write, still read the replies the daemon sent before it closed.
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) ok = read_in() && ok;
    if (!ok && fd_ >= 0) disconnect();
    publish();
  }
  give_up_all("closed");
  publish();
  if (fd_ >= 0) ::close(fd_);
}

void ProducerClient::Impl::connect_now(Clock::time_point now) {
  fd_ = connect_socket(options_.socket_path);
  if (fd_ < 0) {
    next_connect_ = now + doubled(options_.reconnect_initial, options_.reconnect_max, ++connect_failures_);
    return;
  }
  if (connected_once_) count([](ProducerStats& s) { ++s.reconnects; });
  connected_once_ = true;
  out_.clear();
  out_pos_ = 0;
  out_base_ = 0;
  in_.clear();
  line_no_ = 0;
  hello_sent_ = options_.format != "pm-ingestd" && !options_.format.empty();
  if (hello_sent_) {
    out_ = "{\"hello\":{\"format\":\"" + options_.format + "\"}}\n";
    line_no_ = 1;
  }
  first_written_line_ = line_no_ + 1;
}

void ProducerClient::Impl::disconnect(bool lines_read) {
  ::close(fd_);
  fd_ = -1;
  disconnect_state(lines_read);
}

void ProducerClient::Impl::disconnect_state(bool lines_read) {
  // Every line not acknowledged goes again, in order, ahead of the lines not sent yet.
  for (auto it = written_.rbegin(); it != written_.rend(); ++it)
    if (!it->gone) {
      it->maybe_durable = it->maybe_durable || lines_read;
      to_send_.push_front(std::move(*it));
    }
  written_.clear();
  in_submission_order();  // a line resent after `busy` was written after newer ones
  stamped_line_ = 0;
  // Backoff grows until an ack arrives on a connection (a daemon refusing connections with
  // `busy` line 0, or closing them at once, is not hammered).
  next_connect_ = Clock::now() + doubled(options_.reconnect_initial, options_.reconnect_max, ++connect_failures_);
}

void ProducerClient::Impl::take_due(Clock::time_point now) {
  if (busy_.empty() || now < paused_until_) return;
  for (Entry& e : busy_) to_send_.push_back(std::move(e));
  busy_.clear();
  in_submission_order();
}

void ProducerClient::Impl::in_submission_order() {
  std::stable_sort(to_send_.begin(), to_send_.end(), [](const Entry& a, const Entry& b) { return a.seq < b.seq; });
}

void ProducerClient::Impl::queue_writes(Clock::time_point now) {
  if (now < paused_until_) return;  // after `busy`: nothing goes out before the busy lines
  std::uint64_t resent = 0;
  while (!to_send_.empty() && out_.size() - out_pos_ < kMaxBuffered) {
    Entry e = std::move(to_send_.front());
    to_send_.pop_front();
    out_ += e.text;
    out_ += '\n';
    e.end = out_base_ + out_.size();
    if (++e.attempts > 1) ++resent;
    ++line_no_;
    written_.push_back(std::move(e));
  }
  if (resent) count([&](ProducerStats& s) { s.resent += resent; });
}

bool ProducerClient::Impl::write_out() {
  const ssize_t n = ::send(fd_, out_.data() + out_pos_, out_.size() - out_pos_, MSG_NOSIGNAL);
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  out_pos_ += static_cast<std::size_t>(n);
  const std::uint64_t done = out_base_ + out_pos_;
  const Clock::time_point now = Clock::now();
  std::uint64_t lines = 0;
  const std::uint64_t past_last = first_written_line_ + written_.size();
  for (std::uint64_t line = std::max(stamped_line_ + 1, first_written_line_); line < past_last; ++line) {
    Entry& e = written_[line - first_written_line_];
    if (e.end > done) break;
    stamped_line_ = line;
    ++lines;
    if (e.gone || e.first_written != Clock::time_point{}) continue;
    e.first_written = now;
    call_back(e.on_written, now);
  }
  count([&](ProducerStats& s) { s.written += lines; });
  // Drop what was written: all of it, or a long written prefix (out_ keeps its capacity, so a
  // steady stream reuses the same buffer instead of growing it).
  if (out_pos_ == out_.size() || out_pos_ >= kMaxBuffered) {
    out_base_ += out_pos_;
    out_.erase(0, out_pos_);
    out_pos_ = 0;
  }
  return true;
}

bool ProducerClient::Impl::read_in() {
  char buf[65536];
  const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
  if (n == 0) return false;
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  in_.append(buf, static_cast<std::size_t>(n));
  std::size_t start = 0;
  for (std::size_t nl; (nl = in_.find('\n', start)) != std::string::npos; start = nl + 1) {
    handle(parser_.parse(std::string_view(in_).substr(start, nl - start)));
    if (fd_ < 0) {  // the hello was refused, or the reply broke the protocol: the rest is not read
      in_.clear();
      return true;
    }
  }
  in_.erase(0, start);
  if (in_.size() > kMaxReply) {
    // No reply the daemon writes is that long (a detail is bounded): not a daemon speaking the
    // protocol, and the buffer would grow without bound. The unacknowledged lines go again.
    count([](ProducerStats& s) { ++s.protocol_errors; });
    in_.clear();
    disconnect();
  }
  return true;
}

void ProducerClient::Impl::handle(const Reply& reply) {
  if (reply.kind == Reply::Kind::Error) return handle_error(reply);
  if (reply.kind == Reply::Kind::Malformed || (reply.kind == Reply::Kind::Ack && reply.line >= first_written_line_ + written_.size())) {
    // A reply that cannot be matched to lines (an error lost in it, or lines acked that were never
    // written): trust nothing more on this connection; what is unacknowledged goes again.
    count([](ProducerStats& s) { ++s.protocol_errors; });
    return disconnect();
  }
  if (reply.kind != Reply::Kind::Ack) return;
  connect_failures_ = 0;
  if (hello_sent_ && reply.line >= 1) hello_accepted_ = true;
  bool progress = false;  // the daemon follows each `busy` with an ack of its chunk: that is none
  while (!written_.empty() && first_written_line_ <= reply.line) {
    if (!written_.front().gone) {
      resolve(written_.front(), LineOutcome::Status::Acked, "", "");
      progress = true;
    }
    written_.pop_front();
    ++first_written_line_;
  }
  if (progress) {
    last_progress_ = Clock::now();
    busy_pauses_ = 0;
  }
}

Entry* ProducerClient::Impl::written_entry(std::uint64_t line) {
  if (line < first_written_line_ || line - first_written_line_ >= written_.size()) return nullptr;
  Entry& e = written_[line - first_written_line_];
  return e.gone ? nullptr : &e;
}

void ProducerClient::Impl::handle_error(const Reply& reply) {
  if (reply.line == 0) {  // the connection itself was refused (--max-connections): try again later
    return disconnect(false);
  }
  if (hello_sent_ && reply.line == 1 && reply.reason == "busy") {  // not a refusal: try again later
    count([](ProducerStats& s) { ++s.busy; });
    // The hello was incomplete (--line-timeout) and the daemon closes the connection: nothing after
    // it was read.
    return disconnect(false);
  }
  if (hello_sent_ && reply.line == 1) return refuse_hello(reply.detail);
  Entry* e = written_entry(reply.line);
  if (!e) return;
  if (reply.reason == "busy") {  // not progress: a line that never fits must still time out
    count([](ProducerStats& s) { ++s.busy; });
    // While other lines are acked (progress), a line the daemon's budget never has room for
    // would go again for ever: it gives up on its own, give_up_after after its first `busy`.
    const Clock::time_point now = Clock::now();
    if (e->first_busy == Clock::time_point{}) e->first_busy = now;
    if (options_.give_up_after.count() > 0 && now - e->first_busy >= options_.give_up_after) {
      resolve(*e, LineOutcome::Status::Unacknowledged,
              "answered busy for " + duration_text(options_.give_up_after), reply.detail);
      e->gone = true;
      return;
    }
    // Writes pause (a pause under way is not lengthened; each new one doubles until a line is
    // acked); then the busy lines go again first, in submission order, as in the Python client:
    // lines sent meanwhile must not overtake them (the first trigger per token and condition is
    // the one stored, G2).
    if (now >= paused_until_) paused_until_ = now + doubled(options_.busy_initial, options_.busy_max, ++busy_pauses_);
    busy_.push_back(std::move(*e));
    e->gone = true;
    return;
  }
  last_progress_ = Clock::now();
  resolve(*e, LineOutcome::Status::Rejected, reply.reason, reply.detail);
  e->gone = true;
}

// The daemon refused the hello: every line fails, now and later. A line that may be durable is
// Unacknowledged, not Rejected: every pending line once some connection's hello was accepted, and
// a line written on an earlier connection that broke before its reply was read (that daemon may
// have stored it, then the restarted one refused the hello).
void ProducerClient::Impl::refuse_hello(const std::string& detail) {
  const std::string why = std::string(kHelloRefused) + detail;
  {
    std::lock_guard lock(mu_);
    hello_refusal_ = why;
  }
  give_up_all([&](Entry& e) {
    if (hello_accepted_ || e.maybe_durable) resolve(e, LineOutcome::Status::Unacknowledged, why, "");
    else resolve(e, LineOutcome::Status::Rejected, "schema", why);
  });
  ::close(fd_);
  fd_ = -1;
  next_connect_ = Clock::time_point::max();
}

// Decides e's outcome; publish() hands it over (one lock for every line an ack covers).
void ProducerClient::Impl::resolve(Entry& e, LineOutcome::Status status, std::string reason, std::string detail) {
  LineOutcome outcome;
  outcome.status = status;
  outcome.attempts = e.attempts;
  outcome.first_written = e.first_written;
  outcome.resolved = Clock::now();
  outcome.detail = std::move(detail);
  if (status == LineOutcome::Status::Acked) ++settled_.acked;
  if (status == LineOutcome::Status::Rejected) ++settled_.rejected, ++settled_.rejected_by_reason[reason];
  if (status == LineOutcome::Status::Unacknowledged) ++settled_.unacknowledged;
  outcome.reason = std::move(reason);
  settled_.outcomes.emplace_back(std::move(e.done), std::move(outcome));
}

// Counts first (stats() agrees with every outcome a caller has seen), then the callbacks, then
// the lines leave unresolved_ (flush() returns only after their callbacks ran).
void ProducerClient::Impl::publish() {
  if (settled_.outcomes.empty()) return;
  {
    std::lock_guard lock(mu_);
    stats_.acked += settled_.acked;
    stats_.rejected += settled_.rejected;
    stats_.unacknowledged += settled_.unacknowledged;
    for (const auto& [reason, n] : settled_.rejected_by_reason) stats_.rejected_by_reason[reason] += n;
  }
  for (auto& [done, outcome] : settled_.outcomes) call_back(done, outcome);
  {
    std::lock_guard lock(mu_);
    unresolved_ -= settled_.outcomes.size();
  }
  changed_.notify_all();
  settled_.outcomes.clear();  // keeps its capacity for the next acks
  settled_.acked = settled_.rejected = settled_.unacknowledged = 0;
  settled_.rejected_by_reason.clear();
}

void ProducerClient::Impl::give_up_all(const std::string& why) {
  give_up_all([&](Entry& e) { resolve(e, LineOutcome::Status::Unacknowledged, why, ""); });
}

void ProducerClient::Impl::give_up_all(const std::function<void(Entry&)>& fail) {
  {
    std::lock_guard lock(mu_);
    while (!incoming_.empty()) {
      to_send_.push_back(std::move(incoming_.front()));
      incoming_.pop_front();
    }
  }
  for (auto& e : written_)
    if (!e.gone) fail(e);
  written_.clear();
  for (auto& e : to_send_) fail(e);
  to_send_.clear();
  for (auto& e : busy_) fail(e);
  busy_.clear();
}

int ProducerClient::Impl::poll_timeout_ms(Clock::time_point now) const {
  Clock::time_point wake = now + std::chrono::milliseconds(100);
  if (paused_until_ > now && (!busy_.empty() || !to_send_.empty())) wake = std::min(wake, paused_until_);
  if (fd_ < 0 && outstanding()) wake = std::min(wake, next_connect_);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count();
  return ms <= 0 ? 0 : static_cast<int>(ms) + 1;
}

ProducerClient::ProducerClient(ProducerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
ProducerClient::~ProducerClient() = default;

std::future<LineOutcome> ProducerClient::send(std::string line) {
  auto promise = std::make_shared<std::promise<LineOutcome>>();
  std::future<LineOutcome> future = promise->get_future();
  send(std::move(line), [promise](const LineOutcome& o) { promise->set_value(o); });
  return future;
}

void ProducerClient::send(std::string line, Callback done, WrittenCallback on_written) {
  std::vector<Outgoing> one;
  one.push_back(Outgoing{std::move(line), std::move(done), std::move(on_written)});
  impl_->send_all(std::move(one));
}

void ProducerClient::send_all(std::vector<Outgoing> lines) { impl_->send_all(std::move(lines)); }
bool ProducerClient::flush(std::chrono::milliseconds timeout) { return impl_->flush(timeout); }
void ProducerClient::close(std::chrono::milliseconds timeout) { impl_->close(timeout); }
ProducerStats ProducerClient::stats() const { return impl_->stats(); }

bool failed_by_refused_hello(const LineOutcome& outcome) {
  // Rejected: the refusal is the detail; Unacknowledged (pending when it came): the reason.
  return outcome.status != LineOutcome::Status::Acked &&
         (outcome.detail.starts_with(kHelloRefused) || outcome.reason.starts_with(kHelloRefused));
}

}  // namespace pm::client

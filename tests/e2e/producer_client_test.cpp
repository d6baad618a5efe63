// pm::client::ProducerClient and `pm-ingestctl send` against the real daemon: every line gets one
// outcome; acked lines are stored exactly once through kill -9 of the daemon; `busy` is retried;
// rejections carry the daemon's reason and detail.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>

#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "client/producer_client.h"
#include "client/reply_parser.h"
#include "daemon/send_command.h"
#include "tests/e2e/e2e_util.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/fifo_feeder.h"
#include "tests/support/process.h"
#include "tests/support/producer.h"
#include "tests/support/test_database.h"

namespace pm::test {
namespace {

using namespace std::chrono_literals;
using client::LineOutcome;
using client::ProducerClient;
using client::ProducerOptions;

ProducerOptions options_for(const DaemonHarness& d) {
  ProducerOptions o;
  o.socket_path = d.socket();
  o.give_up_after = 60s;
  return o;
}

TEST(ProducerClient, EachLineResolvesOnceAckedOrRejectedWithTheDaemonsReason) {
  TestDatabase tdb("client_basic");
  DaemonHarness d(tdb.url());
  d.start();
  ProducerClient producer(options_for(d));
  std::vector<std::future<LineOutcome>> futures;
  for (int i = 0; i < 500; ++i) futures.push_back(producer.send(trade_line("c", "b" + std::to_string(i))));
  auto bad = producer.send(trade_line("c", "bad", 1'700'000'000, "2"));  // price above 1
  auto garbage = producer.send("{not json");
  for (auto& f : futures) {
    const LineOutcome o = f.get();
    EXPECT_TRUE(o.acked()) << o.reason << " " << o.detail;
    EXPECT_EQ(o.attempts, 1);
    EXPECT_NE(o.first_written, std::chrono::steady_clock::time_point{});
    EXPECT_GE(o.resolved, o.first_written);
  }
  const LineOutcome b = bad.get();
  EXPECT_EQ(b.status, LineOutcome::Status::Rejected);
  EXPECT_EQ(b.reason, "range");
  EXPECT_NE(b.detail.find("price"), std::string::npos) << b.detail;
  EXPECT_EQ(garbage.get().reason, "parse");
  EXPECT_TRUE(wait_until([&] { return query_count(tdb.url(), "SELECT count(*) FROM polymarket_trades") == 500; }, 30s));
  const auto stats = producer.stats();
  EXPECT_EQ(stats.acked, 500u);
  EXPECT_EQ(stats.rejected, 2u);
  EXPECT_EQ(stats.rejected_by_reason.at("range"), 1u);
}

// send_all: many lines in one hand-over, more than the window holds (the call waits for room as
// send() does, after waking the I/O thread for the lines already queued). Each line resolves once,
// in its own place: the one with a newline is refused by the client, the broken one by the daemon.
TEST(ProducerClient, SendAllHandsOverLinesBeyondTheWindowAndEachResolvesInItsPlace) {
  TestDatabase tdb("client_send_all");
  DaemonHarness d(tdb.url());
  d.start();
  ProducerOptions o = options_for(d);
  o.max_in_flight = 50;
  ProducerClient producer(o);
  constexpr int kLines = 300;
  std::mutex mu;
  std::map<int, LineOutcome> outcomes;
  std::vector<ProducerClient::Outgoing> lines;
  for (int i = 0; i < kLines; ++i) {
    std::string text = trade_line("all", "s" + std::to_string(i));
    if (i == 100) text = "{\"two\":\n\"lines\"}";
    if (i == 200) text = "{not json";
    lines.push_back({std::move(text), [&, i](const LineOutcome& out) {
                       std::lock_guard lock(mu);
                       EXPECT_TRUE(outcomes.emplace(i, out).second) << "line " << i << " resolved twice";
                     },
                     nullptr});
  }
  producer.send_all(std::move(lines));
  ASSERT_TRUE(producer.flush(30s));
  std::lock_guard lock(mu);
  ASSERT_EQ(outcomes.size(), static_cast<std::size_t>(kLines));
  for (const auto& [i, out] : outcomes) {
    if (i == 100) {
      EXPECT_EQ(out.reason, "invalid");
    } else if (i == 200) {
      EXPECT_EQ(out.reason, "parse");
    } else {
      EXPECT_TRUE(out.acked()) << "line " << i << ": " << out.reason << " " << out.detail;
    }
  }
  EXPECT_EQ(producer.stats().sent, static_cast<std::uint64_t>(kLines));
  EXPECT_TRUE(wait_until([&] { return query_count(tdb.url(), "SELECT count(*) FROM polymarket_trades") == kLines - 2; }, 30s));
}

// The daemon killed (-9) and restarted while lines are in flight: the client reconnects, resends
// what was not acknowledged, and every line is acked; each is stored exactly once.
TEST(ProducerClient, KillNineOfTheDaemonMidStreamLosesAndDuplicatesNothing) {
  TestDatabase tdb("client_kill");
  DaemonHarness d(tdb.url());
  d.start();
  ProducerOptions o = options_for(d);
  o.max_in_flight = 200;
  ProducerClient producer(o);
  std::atomic<int> acked{0};
  // The lines go in quarters, each sent only once released: the first at once, one more after each
  // restart. So every round starts with a quarter not yet sent, however fast the machine (the
  // sender once came close to its end before the third kill).
  constexpr int kLines = 100'000, kQuarter = kLines / 4;
  std::mutex quarters_mu;
  std::condition_variable quarters_cv;
  int released = 1;
  const auto release = [&](int quarters) {
    {
      std::lock_guard lock(quarters_mu);
      released = quarters;
    }
    quarters_cv.notify_all();
  };
  std::thread sender([&] {
    for (int i = 0; i < kLines; ++i) {
      if (i % kQuarter == 0) {
        std::unique_lock lock(quarters_mu);
        quarters_cv.wait(lock, [&] { return released > i / kQuarter; });
      }
      producer.send(trade_line("c" + std::to_string(i % 5), "k" + std::to_string(i)), [&](const LineOutcome& out) {
        if (out.acked()) ++acked;
      });
    }
  });
  for (int round = 0; round < 3; ++round) {
    const int before = acked.load();
    if (!wait_until([&] { return acked.load() > before + 1000; }, 60s)) {
      release(4);
      sender.join();
      FAIL() << "round " << round << ": fewer than 1000 lines acked in 60 s\n" << d.output();
    }
    d.kill9();
    d.start();
    release(round + 2);
  }
  sender.join();
  ASSERT_TRUE(producer.flush(120s));
  EXPECT_EQ(acked.load(), 100'000);
  EXPECT_GE(producer.stats().reconnects, 3u);
  EXPECT_GT(producer.stats().resent, 0u);  // what was unacknowledged at each kill went again
  ASSERT_TRUE(wait_until([&] { return query_count(tdb.url(), "SELECT count(*) FROM polymarket_trades") == 100'000; }, 60s));
}

// `busy` (the log budget used up while PostgreSQL is unreachable) is not an outcome: the line is
// sent again after a backoff until the daemon takes it.
TEST(ProducerClient, BusyLinesAreSentAgainUntilTheDaemonTakesThem) {
  TestDatabase tdb("client_busy");
  DaemonHarness d("postgresql://nobody@127.0.0.1:1/none", {"--wal-max-bytes", "64K"});
  d.start();
  ProducerOptions o = options_for(d);
  // The budget is checked per chunk the daemon reads: a chunk (the lines in flight) well below it
  // lets some lines in before the budget fills.
  o.max_in_flight = 100;
  ProducerClient producer(o);
  std::atomic<int> acked{0};
  std::thread sender([&] {
    for (int i = 0; i < 2000; ++i)
      producer.send(trade_line("c", "busy" + std::to_string(i)), [&](const LineOutcome& out) { acked += out.acked() ? 1 : 0; });
  });
  ASSERT_TRUE(wait_until([&] { return producer.stats().busy > 0; }, 30s)) << d.output();
  EXPECT_LT(acked.load(), 2000);
  EXPECT_EQ(d.stop(), 0);
  d.database_url() = tdb.url();
  d.start();
  sender.join();
  ASSERT_TRUE(producer.flush(60s));
  EXPECT_EQ(acked.load(), 2000);
  EXPECT_EQ(producer.stats().rejected, 0u);
  EXPECT_GE(producer.stats().resent, producer.stats().busy);  // each busy line went again
  ASSERT_TRUE(wait_until([&] { return query_count(tdb.url(), "SELECT count(*) FROM polymarket_trades") == 2000; }, 60s));
}

// The written callback (pm-loadgen's visibility probes time from it): once per line, before the
// line's outcome, at the moment the outcome reports as first_written.
TEST(ProducerClient, TheWrittenCallbackFiresOnceBeforeTheOutcome) {
  TestDatabase tdb("client_written");
  DaemonHarness d(tdb.url());
  d.start();
  constexpr int kLines = 2000;
  std::vector<std::chrono::steady_clock::time_point> written(kLines);  // the I/O thread's until flush()
  std::vector<int> times_written(kLines, 0), wrong(kLines, 0);
  ProducerClient producer(options_for(d));
  for (int i = 0; i < kLines; ++i)
    producer.send(
        trade_line("c", "w" + std::to_string(i)),
        [&, i](const LineOutcome& o) { wrong[i] = !o.acked() || times_written[i] != 1 || o.first_written != written[i]; },
        [&, i](std::chrono::steady_clock::time_point t) {
          ++times_written[i];
          written[i] = t;
        });
  ASSERT_TRUE(producer.flush(60s));
  EXPECT_EQ(std::count(wrong.begin(), wrong.end(), 1), 0);
  EXPECT_EQ(std::count(times_written.begin(), times_written.end(), 1), kLines);
  EXPECT_EQ(producer.stats().written, static_cast<std::uint64_t>(kLines));
}

// Reply lines as the daemon writes them (the plain ack takes a path of its own) and as a JSON
// writer might (spaces): the same meaning; anything else is Unknown.
TEST(ReplyParser, AcksErrorsAndNoise) {
  client::ReplyParser parser;
  const auto ack = [&](std::string_view text) {
    const client::Reply r = parser.parse(text);
    return r.kind == client::Reply::Kind::Ack ? static_cast<std::int64_t>(r.line) : -1;
  };
  EXPECT_EQ(ack(R"({"ack":17})"), 17);
  EXPECT_EQ(ack(R"({ "ack" : 18 })"), 18);
  EXPECT_EQ(ack(R"({"ack":18446744073709551616})"), -1);  // does not fit 64 bits
  EXPECT_EQ(ack(R"({"ack":12x})"), -1);
  EXPECT_EQ(ack(R"({"ack":})"), -1);
  EXPECT_EQ(ack(R"({"ack":-3})"), -1);
  EXPECT_EQ(ack(R"({"ack":017})"), -1);  // a leading zero is not JSON: the fast path took it for 17
  EXPECT_EQ(ack(R"({"ack":00})"), -1);
  EXPECT_EQ(ack(R"({"ack":0})"), 0);
  EXPECT_EQ(ack("garbage"), -1);
  const client::Reply e = parser.parse(R"({"error":"range","line":4,"detail":"price 2 above 1"})");
  EXPECT_EQ(e.kind, client::Reply::Kind::Error);
  EXPECT_EQ(e.line, 4u);
  EXPECT_EQ(e.reason, "range");
  EXPECT_EQ(e.detail, "price 2 above 1");
  EXPECT_EQ(parser.parse(R"({"error":"range","line":4})").kind, client::Reply::Kind::Error);  // no detail
  // A mistyped reason or detail is Malformed (the connection is dropped, the lines go again), as
  // the Python client takes it; a non-string detail was read as none.
  EXPECT_EQ(parser.parse(R"({"error":null,"line":4})").kind, client::Reply::Kind::Malformed);
  EXPECT_EQ(parser.parse(R"({"error":"range","line":4,"detail":null})").kind, client::Reply::Kind::Malformed);
  EXPECT_EQ(parser.parse(R"({"error":"range","line":4,"detail":7})").kind, client::Reply::Kind::Malformed);
}

TEST(ProducerClient, GivesUpOnAnUnreachableDaemonAndSaysSo) {
  ProducerOptions o;
  o.socket_path = "/nonexistent/pm-ingestd.sock";
  o.give_up_after = 300ms;
  ProducerClient producer(o);
  const LineOutcome out = producer.send(trade_line("c", "lost")).get();
  EXPECT_EQ(out.status, LineOutcome::Status::Unacknowledged);
  EXPECT_NE(out.reason.find("no acknowledgement"), std::string::npos) << out.reason;
}

// A Unix socket a test plays the daemon on: it accepts, reads lines and writes replies by hand.
class HandDaemon {
 public:
  HandDaemon() : path_(make_temp_dir("pm_hand") + "/s") {
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listen_fd_, 4), 0);
  }
  ~HandDaemon() {
    for (int fd : connections_)
      if (fd >= 0) ::close(fd);
    ::close(listen_fd_);
  }
  // Closes connection `c` (a daemon that died before answering).
  void close(int c) {
    ::close(connections_[c]);
    connections_[c] = -1;
  }
  const std::string& path() const { return path_; }
  // The next connection (its index), or -1 when none comes within `timeout`.
  int accept_one(std::chrono::milliseconds timeout) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return -1;
    connections_.push_back(::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC));
    return static_cast<int>(connections_.size()) - 1;
  }
  // Reads until `lines` newlines came on connection `c`, or EOF / `timeout`: what it read, and
  // whether the client closed the connection.
  std::string read_lines(int c, int lines, std::chrono::milliseconds timeout, bool& closed) {
    std::string got;
    closed = false;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::count(got.begin(), got.end(), '\n') < lines) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{connections_[c], POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) != 1) break;
      char buf[4096];
      const ssize_t n = ::recv(connections_[c], buf, sizeof buf, 0);
      if (n <= 0) {
        closed = true;
        break;
      }
      got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
  }
  void reply(int c, const std::string& line) { write_all(connections_[c], line + "\n"); }
  int fd(int c) const { return connections_[c]; }
  // Writes `text` as it is to a connection's fd (any thread); returns once it is all written or the
  // client closed the connection.
  static void write_all(int fd, const std::string& text) {
    for (std::size_t done = 0; done < text.size();) {
      const ssize_t n = ::send(fd, text.data() + done, text.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return;
      done += static_cast<std::size_t>(n);
    }
  }

 private:
  std::string path_;
  int listen_fd_ = -1;
  std::vector<int> connections_;
};

// After giving up on lines written to a connection that stays open (a daemon stalled past
// give_up_after), the next line went out on that connection with its numbering reset: the stalled
// daemon's late {"ack":3} for the given-up lines then resolved it Acked, though it was line 4 there
// and never stored. The client now drops that connection and sends the next lines on a new one.
TEST(ProducerClient, LinesAfterAGiveUpGoOnANewConnectionSoLateRepliesCannotResolveThem) {
  HandDaemon daemon;
  ProducerOptions o;
  o.socket_path = daemon.path();
  // Also the time line d has to be read and acked on the new connection before it gives up too
  // (seconds of accept and read on a loaded machine under a sanitizer).
  o.give_up_after = 2s;
  ProducerClient producer(o);
  std::vector<std::future<LineOutcome>> stalled;
  for (const char* id : {"a", "b", "c"}) stalled.push_back(producer.send(trade_line("c", id)));
  const int first = daemon.accept_one(10s);
  ASSERT_GE(first, 0);
  bool closed = false;
  daemon.read_lines(first, 3, 10s, closed);
  for (auto& f : stalled) EXPECT_EQ(f.get().status, LineOutcome::Status::Unacknowledged);
  auto next = producer.send(trade_line("c", "d"));
  const std::string late = daemon.read_lines(first, 1, 10s, closed);
  EXPECT_TRUE(closed) << "the next line went out on the stalled connection: " << late;
  daemon.reply(first, R"({"ack":3})");
  const int second = daemon.accept_one(10s);
  ASSERT_GE(second, 0) << "no new connection for the next line";
  const std::string line = daemon.read_lines(second, 1, 10s, closed);
  EXPECT_NE(line.find("\"trade_id\":\"d\""), std::string::npos) << line;
  EXPECT_EQ(next.wait_for(0s), std::future_status::timeout) << "resolved before its own connection acked it";
  daemon.reply(second, R"({"ack":1})");
  EXPECT_TRUE(next.get().acked());
}

// The daemon follows every `busy` reply with an ack of its chunk; the client took that ack for
// progress, so a line that never fitted (PostgreSQL down, the log's budget full) was retried
// forever instead of giving up after give_up_after, as the header promises.
TEST(ProducerClient, BusyRepliesAloneDoNotKeepLinesFromGivingUp) {
  DaemonHarness d("postgresql://nobody@127.0.0.1:1/none", {"--wal-max-bytes", "64K"});
  d.start();
  {  // The log's budget fills (nothing is applied): the first chunk is taken whole, later ones get `busy`.
    Producer filler(d.socket());
    ASSERT_TRUE(filler.send(trade_lines("c", "fill", 2000)));
    ASSERT_TRUE(filler.wait_ack(2000, 20s));
  }
  ProducerOptions o = options_for(d);
  o.give_up_after = 1s;
  o.busy_max = 100ms;  // resends (and the acks after their `busy`) come more often than give_up_after
  std::atomic<int> unacknowledged{0};  // outlives the producer, whose callbacks count into it
  ProducerClient producer(o);
  for (int i = 0; i < 600; ++i)
    producer.send(trade_line("c", "storm" + std::to_string(i)), [&](const LineOutcome& out) {
      unacknowledged += out.status == LineOutcome::Status::Unacknowledged ? 1 : 0;
    });
  ASSERT_TRUE(producer.flush(30s)) << "lines still unresolved: busy replies kept them from giving up";
  EXPECT_GT(producer.stats().busy, 0u);
  EXPECT_GT(unacknowledged.load(), 0);
  EXPECT_EQ(d.stop(), 0);
}

// A line the daemon always answers `busy` (too large for the room its budget leaves) while it
// acks every other line: the acks were progress for the whole client, so that line went again for
// ever. It gives up on its own, give_up_after after its first `busy`.
TEST(ProducerClient, ALineAlwaysAnsweredBusyGivesUpWhileOthersAreAcked) {
  HandDaemon daemon;
  ProducerOptions o;
  o.socket_path = daemon.path();
  // Also how long the hand daemon may take to ack the small lines before the whole client gives
  // up ("no acknowledgement for"), with another reason than the one checked below.
  o.give_up_after = 2s;
  o.busy_initial = 5ms;
  o.busy_max = 20ms;
  ProducerClient producer(o);
  std::future<LineOutcome> big = producer.send(trade_line("c", "big"));
  std::atomic<bool> done{false};
  std::atomic<int> busy_replies{0};
  std::thread hand([&] {
    const int c = daemon.accept_one(10s);
    if (c < 0) return;
    std::uint64_t line = 0;
    std::string pending;
    bool closed = false;
    while (!done && !closed) {
      pending += daemon.read_lines(c, 1, 50ms, closed);
      for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos; pending.erase(0, nl + 1)) {
        ++line;
        if (pending.compare(0, nl, trade_line("c", "big")) == 0) {
          daemon.reply(c, R"({"error":"busy","line":)" + std::to_string(line) + R"(,"detail":"the log's budget is used up"})");
          ++busy_replies;
        }
        daemon.reply(c, R"({"ack":)" + std::to_string(line) + "}");
      }
    }
  });
  int small = 0;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (big.wait_for(10ms) == std::future_status::timeout && std::chrono::steady_clock::now() < deadline)
    producer.send(trade_line("c", "small" + std::to_string(small++)));  // acked: progress all along
  const bool resolved = big.wait_for(0s) == std::future_status::ready;
  const bool flushed = resolved && producer.flush(10s);  // the small lines are acked
  done = true;
  hand.join();
  ASSERT_TRUE(resolved) << "still sent again after " << busy_replies.load() << " busy replies";
  EXPECT_TRUE(flushed);
  const LineOutcome out = big.get();
  EXPECT_EQ(out.status, LineOutcome::Status::Unacknowledged);
  EXPECT_EQ(out.reason, "answered busy for 2 s") << out.reason;
  EXPECT_EQ(out.detail, "the log's budget is used up");
  EXPECT_GT(busy_replies.load(), 1);
}

// `busy` means "nothing stored, try again later", for a hello too (the daemon answers an
// incomplete hello line with it when --line-timeout closes the connection). The client took it for
// a refusal and failed every line, now and later, as `schema`.
TEST(ProducerClient, AHelloAnsweredBusyIsTriedAgainOnANewConnection) {
  HandDaemon daemon;
  ProducerOptions o;
  o.socket_path = daemon.path();
  o.format = "clob-ws-market";
  o.reconnect_initial = 10ms;
  ProducerClient producer(o);
  auto line = producer.send(R"({"event_type":"last_trade_price"})");
  const int first = daemon.accept_one(10s);
  ASSERT_GE(first, 0);
  bool closed = false;
  const std::string sent = daemon.read_lines(first, 2, 10s, closed);
  ASSERT_EQ(sent.rfind(R"({"hello":{"format":"clob-ws-market"}})", 0), 0u) << sent;
  daemon.reply(first, R"({"error":"busy","line":1,"detail":"try again"})");
  const int second = daemon.accept_one(10s);
  ASSERT_GE(second, 0) << "no new connection after the busy hello";
  const std::string again = daemon.read_lines(second, 2, 10s, closed);
  EXPECT_EQ(again, sent) << "the hello and the line go again on the new connection";
  daemon.reply(second, R"({"ack":2})");
  const LineOutcome out = line.get();
  EXPECT_TRUE(out.acked()) << out.reason << ": " << out.detail;
  EXPECT_EQ(producer.stats().busy, 1u);
}

// A daemon that stored a line (hello + line pipelined) and died before its ack was read, then
// restarted without the format: the refused hello reported that line Rejected ("never stored"),
// though it was in the log. A line written on a connection that broke before its reply was read
// is Unacknowledged; a line never written before the refusal stays Rejected.
TEST(ProducerClient, ALineWrittenBeforeTheDaemonDiedIsNotRejectedByTheRestartedDaemonsRefusedHello) {
  HandDaemon daemon;
  ProducerOptions o;
  o.socket_path = daemon.path();
  o.format = "clob-ws-market";
  o.reconnect_initial = 10ms;
  ProducerClient producer(o);
  auto line = producer.send(R"({"event_type":"last_trade_price","n":1})");
  const int first = daemon.accept_one(10s);
  ASSERT_GE(first, 0);
  bool closed = false;
  const std::string sent = daemon.read_lines(first, 2, 10s, closed);
  ASSERT_EQ(std::count(sent.begin(), sent.end(), '\n'), 2) << sent;
  daemon.close(first);  // stored, then killed before the ack
  const int second = daemon.accept_one(10s);
  ASSERT_GE(second, 0) << "no new connection after the drop";
  const std::string again = daemon.read_lines(second, 1, 10s, closed);
  ASSERT_EQ(again.rfind(R"({"hello":{"format":"clob-ws-market"}})", 0), 0u) << again;
  daemon.reply(second, R"({"error":"schema","line":1,"detail":"unknown format"})");
  ASSERT_EQ(line.wait_for(10s), std::future_status::ready);
  const LineOutcome out = line.get();
  EXPECT_EQ(out.status, LineOutcome::Status::Unacknowledged) << out.reason << ": " << out.detail;
  EXPECT_TRUE(client::failed_by_refused_hello(out)) << out.reason << ": " << out.detail;
  const LineOutcome later = producer.send(R"({"event_type":"last_trade_price","n":2})").get();
  EXPECT_EQ(later.status, LineOutcome::Status::Rejected);  // never written: never stored
  EXPECT_EQ(later.reason, "schema");
  EXPECT_TRUE(client::failed_by_refused_hello(later));
}

// A line answered `busy` went again after its own backoff, behind the lines sent meanwhile, which
// went out at once: which of two triggers for the same token and condition is stored (the first,
// G2) could change. A `busy` reply now pauses every write; then the busy line goes first, as in
// the Python client.
TEST(ProducerClient, ALineAnsweredBusyGoesAgainBeforeTheLinesSentAfterIt) {
  HandDaemon daemon;
  ProducerOptions o;
  o.socket_path = daemon.path();
  o.busy_initial = 200ms;
  ProducerClient producer(o);
  auto a = producer.send(R"({"n":"A"})");
  const int c = daemon.accept_one(10s);
  ASSERT_GE(c, 0);
  bool closed = false;
  ASSERT_EQ(daemon.read_lines(c, 1, 10s, closed), "{\"n\":\"A\"}\n");
  daemon.reply(c, R"({"error":"busy","line":1,"detail":"the log's budget is used up"})");
  daemon.reply(c, R"({"ack":1})");
  ASSERT_TRUE(wait_until([&] { return producer.stats().busy == 1; }, 10s));
  auto b = producer.send(R"({"n":"B"})");
  EXPECT_EQ(daemon.read_lines(c, 2, 10s, closed), "{\"n\":\"A\"}\n{\"n\":\"B\"}\n")
      << "a line sent after the busy one went first";
  daemon.reply(c, R"({"ack":3})");
  EXPECT_TRUE(a.get().acked());
  EXPECT_TRUE(b.get().acked());
  EXPECT_EQ(producer.stats().resent, 1u);
}

// A backoff of 0 spun the I/O thread (doubling 0 stays 0, poll() waited 0 ms, and the doubling
// loop ran once more per failure); a negative one overflowed. The constructor refuses them.
TEST(ProducerClient, OptionsThatWouldSpinOrOverflowAreRefused) {
  using Field = std::chrono::milliseconds ProducerOptions::*;
  for (const Field field : {&ProducerOptions::reconnect_initial, &ProducerOptions::busy_initial})
    for (const auto bad : {0ms, -5ms}) {
      ProducerOptions o;
      o.socket_path = "/nonexistent/pm-ingestd.sock";
      o.*field = bad;
      EXPECT_THROW(ProducerClient{o}, std::invalid_argument) << bad.count();
    }
  for (const Field field : {&ProducerOptions::reconnect_max, &ProducerOptions::busy_max, &ProducerOptions::give_up_after}) {
    ProducerOptions o;
    o.socket_path = "/nonexistent/pm-ingestd.sock";
    o.*field = -1ms;
    EXPECT_THROW(ProducerClient{o}, std::invalid_argument);
  }
  ProducerOptions o;
  o.socket_path = "/nonexistent/pm-ingestd.sock";
  o.reconnect_initial = 50ms;
  o.reconnect_max = 10ms;  // below its initial
  EXPECT_THROW(ProducerClient{o}, std::invalid_argument);
  try {
    o.reconnect_max = 100ms;
    o.busy_initial = 0ms;
    ProducerClient client(o);
    ADD_FAILURE() << "busy_initial 0 accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("busy_initial"), std::string::npos) << e.what();
  }
  o.busy_initial = 20ms;
  o.give_up_after = 0ms;  // never: meaningful, accepted
  EXPECT_NO_THROW(ProducerClient{o}.close(0ms));
}

// A "daemon" writing without newlines grew the client's reply buffer without bound. A reply line
// over 1 MiB (the Python client's limit) is a protocol error: the connection is dropped and the
// line sent again.
TEST(ProducerClient, AReplyLineOverAMebibyteDropsTheConnectionAndTheLineGoesAgain) {
  HandDaemon daemon;
  ProducerOptions o;
  o.socket_path = daemon.path();
  o.reconnect_initial = 10ms;
  ProducerClient producer(o);
  auto line = producer.send(R"({"n":1})");
  const int first = daemon.accept_one(10s);
  ASSERT_GE(first, 0);
  bool closed = false;
  ASSERT_EQ(daemon.read_lines(first, 1, 10s, closed), "{\"n\":1}\n");
  std::thread flood([fd = daemon.fd(first)] { HandDaemon::write_all(fd, std::string(2 << 20, 'x')); });  // 2 MiB, no newline
  const int second = daemon.accept_one(10s);
  flood.join();
  ASSERT_GE(second, 0) << "no new connection: the client kept reading the endless reply";
  EXPECT_EQ(daemon.read_lines(second, 1, 10s, closed), "{\"n\":1}\n");
  daemon.reply(second, R"({"ack":1})");
  EXPECT_TRUE(line.get().acked());
  EXPECT_EQ(producer.stats().protocol_errors, 1u);
  EXPECT_EQ(producer.stats().resent, 1u);
}

// send() of a line it refuses without sending (a newline in it) waited for room in a full window
// first, up to give_up_after, though the header says such a line is resolved inside send(). And
// flush() from a callback held the I/O thread for its whole timeout (the line called back leaves
// the unresolved count only after its callback), then returned false.
TEST(ProducerClient, AnInvalidLineResolvesAtOnceWithAFullWindowAndFlushInACallbackDoesNotBlock) {
  HandDaemon daemon;  // never replies
  ProducerOptions o;
  o.socket_path = daemon.path();
  o.max_in_flight = 1;
  o.give_up_after = 10s;
  ProducerClient producer(o);
  auto pending = producer.send(R"({"n":1})");  // fills the window, never acked
  auto invalid = std::async(std::launch::async, [&] { return producer.send("a\nb").get(); });
  ASSERT_EQ(invalid.wait_for(3s), std::future_status::ready) << "send() waited for room first";
  EXPECT_EQ(invalid.get().reason, "invalid");
  EXPECT_EQ(pending.wait_for(0s), std::future_status::timeout);
  producer.close(0ms);
  EXPECT_EQ(pending.get().status, LineOutcome::Status::Unacknowledged);

  ProducerClient second(o);
  std::promise<std::chrono::steady_clock::duration> flushed;
  second.send(R"({"n":1})", [&](const LineOutcome&) {
    const auto start = std::chrono::steady_clock::now();
    second.flush(5s);
    flushed.set_value(std::chrono::steady_clock::now() - start);
  });
  auto took = flushed.get_future();
  second.close(0ms);  // resolves the line: its callback runs
  ASSERT_EQ(took.wait_for(10s), std::future_status::ready);
  EXPECT_LT(took.get(), 1s) << "flush() in a callback waited for its timeout";
}

// stats().reconnects counted disconnects: a give-up's dropped connection counted as a reconnect
// though none was made (pm-ingestctl send printed "1 reconnects" for a run on one connection). It
// counts connections made after the first, as the Python client's does.
TEST(ProducerClient, ReconnectsCountConnectionsMadeAfterTheFirstNotDisconnects) {
  HandDaemon daemon;
  ProducerOptions o;
  o.socket_path = daemon.path();
  // Long enough for the second exchange on a loaded machine (a sanitizer build): the give-up of
  // the first line takes that long too.
  o.give_up_after = 2s;
  ProducerClient producer(o);
  auto lost = producer.send(R"({"n":1})");
  const int first = daemon.accept_one(10s);
  ASSERT_GE(first, 0);
  bool closed = false;
  daemon.read_lines(first, 1, 10s, closed);
  EXPECT_EQ(lost.get().status, LineOutcome::Status::Unacknowledged);  // given up: the connection dropped
  EXPECT_EQ(producer.stats().reconnects, 0u);
  auto next = producer.send(R"({"n":2})");
  const int second = daemon.accept_one(10s);
  ASSERT_GE(second, 0);
  EXPECT_EQ(daemon.read_lines(second, 1, 10s, closed), "{\"n\":2}\n");
  daemon.reply(second, R"({"ack":1})");
  EXPECT_TRUE(next.get().acked());
  EXPECT_EQ(producer.stats().reconnects, 1u);
}

// A reply that breaks the protocol (a cut error reply; an ack of lines never written) was ignored
// or believed: the line whose error was lost in it was reported acked when the next ack covered
// it. The client drops the connection, counts it, and sends the unacknowledged lines again.
TEST(ProducerClient, AReplyThatBreaksTheProtocolDropsTheConnectionAndTheLinesGoAgain) {
  HandDaemon daemon;
  ProducerOptions o;
  o.socket_path = daemon.path();
  o.reconnect_initial = 10ms;
  ProducerClient producer(o);
  auto one = producer.send(R"({"n":1})");
  auto two = producer.send(R"({"n":2})");
  bool closed = false;
  int c = daemon.accept_one(10s);
  ASSERT_GE(c, 0);
  for (const std::string bad : {R"({"error":"invalid","line":1)", R"({"ack":"2"})", R"({"ack":3})"}) {
    const std::string sent = daemon.read_lines(c, 2, 10s, closed);
    ASSERT_EQ(sent, "{\"n\":1}\n{\"n\":2}\n") << "after " << bad;
    daemon.reply(c, bad);
    daemon.reply(c, R"({"ack":2})");
    c = daemon.accept_one(10s);
    ASSERT_GE(c, 0) << "no new connection after " << bad;
  }
  EXPECT_EQ(daemon.read_lines(c, 2, 10s, closed), "{\"n\":1}\n{\"n\":2}\n");
  daemon.reply(c, R"({"error":"invalid","line":1,"detail":"no type"})");
  daemon.reply(c, R"({"ack":2})");
  EXPECT_EQ(one.get().reason, "invalid");
  EXPECT_TRUE(two.get().acked());
  EXPECT_EQ(producer.stats().protocol_errors, 3u);
  // A reply of a kind this client does not know (a newer daemon's) is ignored, as before.
  auto three = producer.send(R"({"n":3})");
  EXPECT_EQ(daemon.read_lines(c, 1, 10s, closed), "{\"n\":3}\n");
  daemon.reply(c, R"({"notice":"from a newer daemon"})");
  daemon.reply(c, R"({"ack":3})");
  EXPECT_TRUE(three.get().acked());
  EXPECT_EQ(producer.stats().protocol_errors, 3u);
}

TEST(ProducerClient, RefusesWithoutSendingALineWithANewlineOrAHelloOfItsOwn) {
  TestDatabase tdb("client_invalid");
  DaemonHarness d(tdb.url());
  d.start();
  ProducerClient producer(options_for(d));
  const LineOutcome two = producer.send(trade_line("c", "n1") + "\n" + trade_line("c", "n2")).get();
  EXPECT_EQ(two.status, LineOutcome::Status::Rejected);
  EXPECT_EQ(two.reason, "invalid");
  EXPECT_EQ(producer.send(R"( {"hello":{"format":"clob-ws-market"}})").get().reason, "invalid");
  // Anything the daemon reads as a hello on line 1 (a "hello" member, no "type"), however spelled:
  // sent first after a reconnect, it would switch the connection's format.
  for (const char* hello : {R"({ "hello" : {"format":"clob-ws-market"}})", R"({"x":1,"hello":{"format":"clob-ws-market"}})",
                            R"({"\u0068ello":{"format":"clob-ws-market"}})"})
    EXPECT_EQ(producer.send(hello).get().reason, "invalid") << hello;
  EXPECT_TRUE(producer.send(trade_line("c", "after")).get().acked()) << "line numbers still match";
  EXPECT_THROW(ProducerClient(ProducerOptions{d.socket(), "gamma"}), std::invalid_argument);
}

// A caller's callback that throws ran on the I/O thread: std::terminate, and every line in memory
// lost with the process; one thrown for a line refused without sending skipped the callbacks of
// the rest of its send_all(). The exception is counted and dropped; every line still resolves.
TEST(ProducerClient, ACallbackThatThrowsEndsNeitherTheClientNorTheOtherCallbacks) {
  TestDatabase tdb("client_throwing_callback");
  DaemonHarness d(tdb.url());
  d.start();
  ProducerClient producer(options_for(d));
  std::atomic<int> resolved{0};
  std::vector<ProducerClient::Outgoing> lines;
  lines.push_back({"two\nlines", [&](const LineOutcome&) {  // refused without sending: called in send_all
                     ++resolved;
                     throw std::runtime_error("a caller's bug");
                   },
                   nullptr});
  for (int i = 0; i < 20; ++i)
    lines.push_back({trade_line("c", "throwing-" + std::to_string(i)),
                     [&, i](const LineOutcome& out) {
                       EXPECT_TRUE(out.acked()) << out.reason << ": " << out.detail;
                       ++resolved;
                       if (i % 5 == 0) throw std::runtime_error("a caller's bug");
                     },
                     [i](std::chrono::steady_clock::time_point) {
                       if (i == 7) throw std::logic_error("another");
                     }});
  producer.send_all(std::move(lines));
  ASSERT_TRUE(producer.flush(std::chrono::seconds(30)));
  EXPECT_EQ(resolved.load(), 21);
  EXPECT_EQ(producer.stats().callback_errors, 6u);  // the refused line's, four acks', one write's
  EXPECT_TRUE(producer.send(trade_line("c", "after")).get().acked());
  EXPECT_TRUE(wait_until([&] { return query_count(tdb.url(), "SELECT count(*) FROM polymarket_trades WHERE trade_id LIKE 'throwing-%'") == 20; }, 30s));
}

// A connection refused with `busy` line 0 (--max-connections reached) is tried again with a
// growing backoff until the daemon takes it; its lines then get through.
TEST(ProducerClient, AConnectionRefusedAtTheLimitIsTriedAgainUntilTaken) {
  TestDatabase tdb("client_limit");
  DaemonHarness d(tdb.url(), {"--max-connections", "1"});
  d.start();
  // The one slot, once the harness's own probe connection has gone.
  std::unique_ptr<Producer> holder;
  ASSERT_TRUE(wait_until(
      [&] {
        holder = std::make_unique<Producer>(d.socket());
        return holder->send({trade_line("c", "holder")}) && holder->wait_ack(1, 2s).has_value();
      },
      20s));
  ProducerClient producer(options_for(d));
  auto ack = producer.send(trade_line("c", "waited"));
  ASSERT_TRUE(wait_until([&] { return producer.stats().reconnects >= 2; }, 10s));
  EXPECT_EQ(ack.wait_for(0s), std::future_status::timeout);
  holder.reset();  // the slot frees
  EXPECT_TRUE(ack.get().acked());
}

TEST(SendInput, NdjsonLinesOrTheElementsOfOneJsonArray) {
  const auto lines = ctl::split_input("a", "{\"x\":1}\r\n\n  \n{\"y\":2}\n");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].text, "{\"x\":1}");
  EXPECT_EQ(lines[0].origin, "a:1");
  EXPECT_EQ(lines[1].origin, "a:4");
  const auto elements = ctl::split_input("r", "[\n  {\"id\": \"t1\"},\n  {\"id\": \"t2\"}\n]\n");
  ASSERT_EQ(elements.size(), 2u);
  EXPECT_EQ(elements[1].text, "{\"id\":\"t2\"}");
  EXPECT_EQ(elements[1].origin, "r:[1]");
  const auto pretty = ctl::split_input("p", "[\n {\"price\": 10.50,\n  \"title\": \"A \\\"b\\\" \\u00e9 c\"}\n]");
  ASSERT_EQ(pretty.size(), 1u);
  EXPECT_EQ(pretty[0].text, "{\"price\":10.50,\"title\":\"A \\\"b\\\" \\u00e9 c\"}") << "tokens kept byte for byte";
  // Whitespace after an escaped quote is inside the string: the scan took that quote for the
  // string's end and dropped the space of "b c".
  const auto quoted = ctl::split_input("q", "[\n {\"title\": \"A \\\"b c\\\" d\",\n  \"x\": 1}\n]");
  ASSERT_EQ(quoted.size(), 1u);
  EXPECT_EQ(quoted[0].text, "{\"title\":\"A \\\"b c\\\" d\",\"x\":1}");
  const auto ws = ctl::split_input("w", "[{\"e\":1}]\n[]\n");  // websocket messages: one line each
  ASSERT_EQ(ws.size(), 2u);
  EXPECT_EQ(ws[1].text, "[]");
}

// InputReader cuts an input as split_input() cuts its whole text, line numbers included.
TEST(SendInput, TheReaderCutsAStreamAsTheWholeTextWouldBeCut) {
  const std::vector<std::string> texts = {
      "{\"x\":1}\r\n\n  \n{\"y\":2}\n",                      // NDJSON, blank lines skipped
      "\n\n{\"x\":1}\n{\"y\":2}",                              // blank lines first, no final newline
      "[\n  {\"id\": \"t1\"},\n  {\"id\": \"t2\"}\n]\n",         // a pretty-printed array
      "[{\"id\":\"t1\"},{\"id\":\"t2\"}]\n",                     // a compact array, alone
      "[{\"e\":1}]\n[]\n",                                     // websocket messages: one line each
      "[{\"e\":1},\n",                                         // not JSON: its lines
      "",
      "\n \n"};
  for (const std::string& text : texts) {
    std::istringstream in(text);
    ctl::InputReader reader("n", in);
    std::vector<ctl::InputLine> read;
    for (ctl::InputLine line; reader.next(line);) read.push_back(line);
    const std::vector<ctl::InputLine> whole = ctl::split_input("n", text);
    ASSERT_EQ(read.size(), whole.size()) << text;
    for (std::size_t i = 0; i < read.size(); ++i) {
      EXPECT_EQ(read[i].text, whole[i].text) << text;
      EXPECT_EQ(read[i].origin, whole[i].origin) << text;
    }
  }
}

// Starts `send`, pm-ingestctl send to `d` reading the FIFO it makes (returned: d.dir()/input.fifo),
// its output in d.dir()/send.out. Empty (and a test failure) when the FIFO cannot be made.
std::string start_send_from_a_fifo(const DaemonHarness& d, Process& send) {
  const std::string fifo = d.dir() + "/input.fifo";
  if (::mkfifo(fifo.c_str(), 0600) != 0) {
    ADD_FAILURE() << "mkfifo " << fifo;
    return "";
  }
  send.start(PM_INGESTCTL_BIN, {"send", "--socket", d.socket(), "--input", fifo}, {}, d.dir() + "/send.out");
  return fifo;
}

// pm-ingestctl send at the end of a pipe: each line is sent as it is read, before the input ends.
TEST(CtlSend, SendsEachLineOfAPipeAsItIsRead) {
  TestDatabase tdb("ctl_send_stream");
  DaemonHarness d(tdb.url());
  d.start();
  Process send;
  const std::string fifo = start_send_from_a_fifo(d, send);
  ASSERT_FALSE(fifo.empty());
  std::ofstream pipe(fifo);  // opens once pm-ingestctl opened its end
  for (int i = 0; i < 5; ++i) pipe << trade_line("c", "early" + std::to_string(i)) << "\n";
  pipe.flush();
  EXPECT_TRUE(wait_until([&] { return query_count(tdb.url(), "SELECT count(*) FROM polymarket_trades") == 5; }, 30s))
      << "the lines written so far were not sent while the input was still open";
  EXPECT_TRUE(send.running());
  for (int i = 0; i < 5; ++i) pipe << trade_line("c", "late" + std::to_string(i)) << "\n";
  pipe.close();
  const auto code = send.wait(60s);
  const std::string out = read_file(d.dir() + "/send.out");
  EXPECT_EQ(code, std::optional<int>(0)) << out;
  EXPECT_NE(out.find("sent 10 lines from 1 input(s) (format pm-ingestd): acked 10, rejected 0, unacknowledged 0"),
            std::string::npos) << out;
}

// pm-ingestctl send behind a pipe that stays open (`tail -F`): a rejected line is printed as its
// reply comes, not only in the summary at the end of the input, which may be days away. Past 100
// of one reason one line says the rest are only counted.
TEST(CtlSend, PrintsEachRejectionAsItComes) {
  TestDatabase tdb("ctl_send_live_rejection");
  DaemonHarness d(tdb.url());
  d.start();
  Process send;
  const std::string fifo = start_send_from_a_fifo(d, send);
  ASSERT_FALSE(fifo.empty());
  std::ofstream pipe(fifo);
  pipe << trade_line("c", "good") << "\n" << trade_line("c", "bad", 1'700'000'000, "7") << "\n" << std::flush;
  const std::string first = "rejected range: " + fifo + ":2: ";
  EXPECT_TRUE(wait_until([&] { return read_file(d.dir() + "/send.out").find(first) != std::string::npos; }, 30s))
      << "no rejection printed while the input is open: " << read_file(d.dir() + "/send.out");
  EXPECT_TRUE(send.running());
  for (int i = 0; i < 150; ++i) pipe << trade_line("c", "bad" + std::to_string(i), 1'700'000'000, "7") << "\n";
  pipe << std::flush;
  const std::string cap = "rejected range: more than 100 lines; the rest are counted in the summary, not printed";
  EXPECT_TRUE(wait_until([&] { return read_file(d.dir() + "/send.out").find(cap) != std::string::npos; }, 30s))
      << read_file(d.dir() + "/send.out");
  pipe.close();
  const auto code = send.wait(60s);
  const std::string out = "\n" + read_file(d.dir() + "/send.out");  // each printed line starts after a newline
  EXPECT_EQ(code, std::optional<int>(1)) << out;
  EXPECT_NE(out.find("acked 1, rejected 151, unacknowledged 0"), std::string::npos) << out;
  std::size_t printed_live = 0;
  for (std::size_t at = out.find("\nrejected range: " + fifo); at != std::string::npos;
       at = out.find("\nrejected range: " + fifo, at + 1))
    ++printed_live;
  EXPECT_EQ(printed_live, 100u) << out;
}

// pm-ingestctl send with no daemon to hear it: the first give-up ends the run. It used to give up
// one window of --max-in-flight lines at a time and read on, each window waiting --give-up-after
// again: a cron job's 100,000 lines at the defaults took 100 minutes to say the daemon was gone.
TEST(CtlSend, StopsReadingItsInputAtTheFirstGiveUp) {
  const std::string dir = make_temp_dir("ctl_send_give_up");
  {
    std::ofstream a(dir + "/a.ndjson");
    for (int i = 0; i < 200; ++i) a << trade_line("c", "a" + std::to_string(i)) << "\n";
    std::ofstream b(dir + "/b.ndjson");
    b << trade_line("c", "b") << "\n";
  }
  Process send;
  send.start(PM_INGESTCTL_BIN, {"send", "--socket", dir + "/no-daemon.sock", "--input", dir + "/a.ndjson", "--input",
                                dir + "/b.ndjson", "--max-in-flight", "10", "--give-up-after", "1"},
             {}, dir + "/send.out");
  const auto code = send.wait(120s);
  const std::string out = read_file(dir + "/send.out");
  ASSERT_TRUE(code.has_value()) << out;
  EXPECT_EQ(*code, 1) << out;
  std::size_t sent = 0, unacknowledged = 0;
  ASSERT_EQ(std::sscanf(out.c_str(), "sent %zu lines from 2 input(s) (format pm-ingestd): acked 0, rejected 0, unacknowledged %zu",
                        &sent, &unacknowledged), 2) << out;
  EXPECT_LE(sent, 20u) << "lines were read past the first give-up: " << out;
  EXPECT_EQ(unacknowledged, sent) << out;
  EXPECT_NE(out.find("stopped reading after " + dir + "/a.ndjson:"), std::string::npos) << out;
  EXPECT_NE(out.find("the client gave up (no acknowledgement for 1 s)"), std::string::npos) << out;
  EXPECT_NE(out.find("inputs not read: " + dir + "/b.ndjson"), std::string::npos) << out;
  std::filesystem::remove_all(dir);
}

// pm-ingestctl send with no daemon, behind a pipe that stays open and quiet after one line (`tail
// -F` of a feed that went silent): the give-up ends the run by itself. It used to notice the
// give-up only when it read the next line, and until then said nothing (the unacknowledged line
// is not printed as it comes), however long the feed stayed quiet.
TEST(CtlSend, AGiveUpEndsTheRunWhileThePipeIsQuiet) {
  const std::string dir = make_temp_dir("ctl_send_quiet_give_up");
  const std::string fifo = dir + "/input.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  Process send;
  send.start(PM_INGESTCTL_BIN, {"send", "--socket", dir + "/no-daemon.sock", "--input", fifo, "--give-up-after", "1"}, {},
             dir + "/send.out");
  std::ofstream pipe(fifo);
  pipe << trade_line("c", "only") << "\n" << std::flush;
  const auto code = send.wait(60s);  // the pipe stays open: the run ends by itself or not at all
  pipe.close();
  const std::string out = read_file(dir + "/send.out");
  ASSERT_EQ(code, std::optional<int>(1)) << out;
  EXPECT_NE(out.find("sent 1 lines from 1 input(s) (format pm-ingestd): acked 0, rejected 0, unacknowledged 1"),
            std::string::npos) << out;
  EXPECT_NE(out.find("stopped reading after " + fifo + ":1: the client gave up (no acknowledgement for 1 s)"),
            std::string::npos) << out;
  std::filesystem::remove_all(dir);
}

// pm-ingestctl send whose hello the daemon refuses (a daemon older than the ctl): every later line
// fails without being sent, so the run ends as at a give-up. It read on, rejecting each line, and
// behind a pipe never ended (nor printed anything); then it ended only at the first line it read
// after the refusal. Now the refusal ends it while the pipe stays open and quiet.
TEST(CtlSend, ARefusedHelloEndsTheRun) {
  HandDaemon daemon;
  const std::string dir = make_temp_dir("ctl_send_hello");
  const std::string fifo = dir + "/input.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  Process send;
  send.start(PM_INGESTCTL_BIN, {"send", "--socket", daemon.path(), "--format", "clob-ws-market", "--input", fifo}, {},
             dir + "/send.out");
  std::ofstream pipe(fifo);
  pipe << R"({"event_type":"last_trade_price","n":0})" << "\n" << std::flush;
  const int conn = daemon.accept_one(30s);
  ASSERT_GE(conn, 0);
  bool closed = false;
  const std::string sent = daemon.read_lines(conn, 2, 30s, closed);
  ASSERT_EQ(sent.rfind(R"({"hello":{"format":"clob-ws-market"}})", 0), 0u) << sent;
  daemon.reply(conn, R"({"error":"schema","line":1,"detail":"unknown format 'clob-ws-market'"})");
  daemon.read_lines(conn, 1, 30s, closed);  // the client closes the connection once it took the refusal
  ASSERT_TRUE(closed);
  const auto code = send.wait(30s);  // the pipe stays open and quiet: the run ends by itself or not at all
  pipe.close();
  const std::string out = read_file(dir + "/send.out");
  ASSERT_EQ(code, std::optional<int>(1)) << out;
  EXPECT_NE(out.find("stopped reading after " + fifo + ":1:"), std::string::npos) << out;
  EXPECT_NE(out.find("hello refused: unknown format 'clob-ws-market'"), std::string::npos) << out;
  std::filesystem::remove_all(dir);
}

// pm-ingestctl send through a kill -9 of the daemon: it finishes its input after the restart,
// reports every line acked and exits 0; each trade is stored once. Its input is a FIFO whose second
// half is written only after the restart, so send is mid-stream at the kill on any machine.
TEST(CtlSend, FinishesItsInputThroughKillNineOfTheDaemon) {
  TestDatabase tdb("ctl_send_kill");
  constexpr int kLines = 300'000;
  DaemonHarness d(tdb.url());
  d.start();
  FifoFeeder input(d.dir() + "/trades.ndjson", [](int i) {
    return i < kLines ? trade_line("c" + std::to_string(i % 7), "s" + std::to_string(i))
                      : trade_line("c", "refused", 1'700'000'000, "7");
  }, kLines / 2, kLines + 1);
  Process send;
  send.start(PM_INGESTCTL_BIN, {"send", "--socket", d.socket(), "--input", input.path(), "--max-in-flight", "300"}, {},
             d.dir() + "/send.out");
  ASSERT_TRUE(wait_until([&] { return query_count(tdb.url(), "SELECT count(*) FROM polymarket_trades") > 3000; }, 60s));
  d.kill9();
  d.start();
  input.release();
  const auto code = send.wait(120s);
  const std::string out = read_file(d.dir() + "/send.out");
  ASSERT_TRUE(code.has_value()) << out;
  EXPECT_EQ(*code, 1) << out;  // one line was refused
  EXPECT_NE(out.find("acked 300000, rejected 1, unacknowledged 0"), std::string::npos) << out;
  EXPECT_NE(out.find("trades.ndjson:300001: "), std::string::npos) << out;
  EXPECT_EQ(out.find(", 0 reconnects"), std::string::npos) << "send did not reconnect after the kill: " << out;
  ASSERT_TRUE(wait_until([&] { return query_count(tdb.url(), "SELECT count(*) FROM polymarket_trades") == kLines; }, 60s));
}

// Both producers a bot uses, mid-stream at once when the daemon is killed (-9) and restarted: each
// finishes its input after the restart and reports everything acked; each line is stored once.
// Their inputs are FIFOs whose second halves are written only after the restart: neither can
// finish before the kill, however the machine schedules them (with whole files, one once did).
TEST(Producers, PythonClientAndCtlSendBothFinishThroughKillNineOfTheDaemon) {
  TestDatabase tdb("producers_kill");
  constexpr int kCtlLines = 200'000, kPythonLines = 150'000;
  DaemonHarness d(tdb.url());
  d.start();
  const auto trades_named = [](std::string prefix) {
    return [prefix](int i) { return trade_line("c" + std::to_string(i % 7), prefix + std::to_string(i)); };
  };
  FifoFeeder ctl_input(d.dir() + "/ctl.ndjson", trades_named("ctl"), kCtlLines / 2, kCtlLines);
  FifoFeeder py_input(d.dir() + "/py.ndjson", trades_named("py"), kPythonLines / 2, kPythonLines);
  const auto stored = [&](const std::string& prefix) {
    return query_count(tdb.url(), "SELECT count(*) FROM polymarket_trades WHERE trade_id LIKE '" + prefix + "%'");
  };
  Process send, python;
  send.start(PM_INGESTCTL_BIN, {"send", "--socket", d.socket(), "--input", ctl_input.path(), "--max-in-flight", "300"}, {},
             d.dir() + "/send.out");
  python.start("/usr/bin/python3",
               {std::string(PM_SOURCE_DIR) + "/tests/support/send_file.py", std::string(PM_SOURCE_DIR) + "/clients/python",
                d.socket(), "pm-ingestd", py_input.path(), "500"},
               {}, d.dir() + "/python.out");
  ASSERT_TRUE(wait_until([&] { return stored("ctl") > 2000 && stored("py") > 2000; }, 60s)) << d.output();
  d.kill9();
  d.start();
  ctl_input.release();
  py_input.release();
  const auto send_code = send.wait(180s);
  const auto python_code = python.wait(180s);
  const std::string send_out = read_file(d.dir() + "/send.out"), python_out = read_file(d.dir() + "/python.out");
  ASSERT_EQ(send_code, std::optional<int>(0)) << send_out;
  ASSERT_EQ(python_code, std::optional<int>(0)) << python_out;
  EXPECT_NE(send_out.find("acked 200000, rejected 0, unacknowledged 0"), std::string::npos) << send_out;
  EXPECT_NE(python_out.find("acked " + std::to_string(kPythonLines)), std::string::npos) << python_out;
  EXPECT_EQ(send_out.find(", 0 reconnects"), std::string::npos) << "send did not reconnect after the kill: " << send_out;
  EXPECT_EQ(python_out.find("reconnects 0"), std::string::npos) << "the client did not reconnect after the kill: " << python_out;
  ASSERT_TRUE(wait_until([&] { return stored("ctl") == kCtlLines && stored("py") == kPythonLines; }, 60s))
      << stored("ctl") << " + " << stored("py");
}

}  // namespace
}  // namespace pm::test

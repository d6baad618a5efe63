// pm-loadgen against the real daemon and PostgreSQL: a counted run that verifies, the JSON
// summary's fields, replay of a file (and of a pipe), duplicates, a verification that must fail
// (a deleted and an added row), a kill -9 of the daemon mid-run that the loadgen rides out by
// resending, and the visibility probes (--visibility-probes) timed from another PostgreSQL session.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <pqxx/pqxx>
#include <simdjson.h>

#include "daemon/loadgen/loadgen_probe.h"
#include "tests/e2e/e2e_util.h"
#include "tests/support/black_hole.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/process.h"
#include "tests/support/test_database.h"

#ifndef PM_LOADGEN_BIN
#error PM_LOADGEN_BIN must name the pm-loadgen binary
#endif

namespace pm::test {
namespace {

using namespace std::chrono_literals;

struct LoadgenRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr
  std::string json;    // the summary line, when --json was given
};

// Starts pm-loadgen; the caller waits for it (so that it can act on the daemon meanwhile).
class Loadgen {
 public:
  Loadgen(const std::string& dir, std::vector<std::string> args) : out_(dir + "/loadgen" + std::to_string(counter_++) + ".out") {
    process_.start(PM_LOADGEN_BIN, args, {}, out_);
  }
  LoadgenRun wait(std::chrono::milliseconds timeout = 300s) {
    LoadgenRun r;
    auto code = process_.wait(timeout);
    r.exit_code = code ? *code : -1;
    r.output = read_file(out_);
    std::istringstream in(r.output);
    for (std::string line; std::getline(in, line);)
      if (!line.empty() && line.front() == '{') r.json = line;
    return r;
  }
  bool running() { return process_.running(); }
  void signal(int sig) { process_.signal(sig); }
  const std::string& output_path() const { return out_; }

 private:
  static inline int counter_ = 0;
  std::string out_;
  Process process_;
};

LoadgenRun run_loadgen(const std::string& dir, const std::vector<std::string>& args) { return Loadgen(dir, args).wait(); }

class Json {
 public:
  explicit Json(const std::string& text) : padded_(text) {
    if (parser_.parse(padded_).get(doc_) != simdjson::SUCCESS) throw std::runtime_error("summary is not JSON: " + text);
  }
  double num(std::initializer_list<const char*> path) const {
    simdjson::dom::element e = doc_;
    for (const char* key : path)
      if (e[key].get(e) != simdjson::SUCCESS) throw std::runtime_error(std::string("summary lacks ") + key);
    double d = 0;
    if (e.get_double().get(d) == simdjson::SUCCESS) return d;
    bool b = false;
    if (e.get_bool().get(b) == simdjson::SUCCESS) return b ? 1 : 0;
    throw std::runtime_error("not a number");
  }
  bool has(const char* key) const {
    simdjson::dom::element e;
    return doc_[key].get(e) == simdjson::SUCCESS;
  }

 private:
  simdjson::padded_string padded_;
  simdjson::dom::parser parser_;
  simdjson::dom::element doc_;
};

class LoadgenTest : public ::testing::Test {
 protected:
  LoadgenTest() : tdb_("loadgen"), daemon_(tdb_.url(), {"--batch-max-delay-ms", "5"}) {}
  void SetUp() override { daemon_.start(); }
  std::vector<std::string> base(std::vector<std::string> more) {
    std::vector<std::string> args = {"--socket", daemon_.socket(), "--database-url", tdb_.url(), "--quiet", "--json"};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }
  long long trades() { return query_count(tdb_.url(), "SELECT count(*) FROM polymarket_trades"); }

  TestDatabase tdb_;
  DaemonHarness daemon_;
};

TEST_F(LoadgenTest, CountedRunWithTriggersVerifiesAndReportsEveryField) {
  const auto r = run_loadgen(daemon_.dir(), base({"--count", "4000", "--connections", "3", "--rate", "unlimited",
                                                  "--triggers", "0.25", "--conditions", "40", "--seed", "11", "--verify"}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_FALSE(r.json.empty()) << r.output;
  const Json j(r.json);
  EXPECT_EQ(j.num({"events"}), 4000);
  EXPECT_EQ(j.num({"acked"}), 4000);
  EXPECT_EQ(j.num({"rejected"}), 0);
  EXPECT_EQ(j.num({"unacked"}), 0);
  EXPECT_EQ(j.num({"connections"}), 3);
  EXPECT_GE(j.num({"written"}), 4000);
  EXPECT_GT(j.num({"seconds"}), 0);
  EXPECT_GT(j.num({"throughput_eps"}), 0);
  EXPECT_EQ(j.num({"ack_latency_ms", "count"}), 4000);
  const double p50 = j.num({"ack_latency_ms", "p50"}), p90 = j.num({"ack_latency_ms", "p90"}),
               p99 = j.num({"ack_latency_ms", "p99"}), p999 = j.num({"ack_latency_ms", "p999"}),
               max = j.num({"ack_latency_ms", "max"});
  EXPECT_GT(p50, 0);
  EXPECT_LE(p50, p90);
  EXPECT_LE(p90, p99);
  EXPECT_LE(p99, p999);
  EXPECT_LE(p999, max);
  EXPECT_TRUE(j.has("errors_by_reason"));
  EXPECT_EQ(j.num({"verify", "ok"}), 1);
  // Triggers: 40 conditions x 6 thresholds leave many G2 duplicates; at most one row per pair.
  const double pairs = j.num({"verify", "trigger_pairs_acked"});
  EXPECT_GT(pairs, 0);
  EXPECT_EQ(query_count(tdb_.url(), "SELECT count(*) FROM polymarket_first_triggers"), static_cast<long long>(pairs));
  EXPECT_LT(pairs, 1000) << "expected far fewer first triggers than trigger events";
  EXPECT_EQ(trades(), static_cast<long long>(j.num({"verify", "trades_acked"})));
  EXPECT_GT(trades(), 2500);
}

TEST_F(LoadgenTest, ReplaysAnInputFileCountsRejectionsAndTimesEndToEnd) {
  const std::string file = daemon_.dir() + "/input.ndjson";
  {
    std::ofstream out(file);
    for (int i = 0; i < 500; ++i) out << trade_line("cond" + std::to_string(i % 7), "in" + std::to_string(i)) << "\n";
    out << trade_line("cond0", "bad_price", 1'700'000'000, "1.5") << "\n";  // refused: range
    out << "not json\n";                                                     // refused: parse
    for (int i = 0; i < 150; i += 3) out << trade_line("cond" + std::to_string(i % 7), "in" + std::to_string(i)) << "\n";  // repeats
  }
  // Refused lines are exit code 1 (the run's figures cover fewer events than offered), unless the
  // input's bad lines are on purpose (--allow-rejected); the summary is the same either way.
  const auto refused = run_loadgen(daemon_.dir(), base({"--input", file, "--count", "502", "--rate", "unlimited"}));
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("the daemon refused 2 line(s)"), std::string::npos) << refused.output;
  EXPECT_EQ(Json(refused.json).num({"rejected"}), 2);
  ASSERT_TRUE(wait_until([&] { return trades() == 500; }, 30s)) << trades();
  tdb_.exec("TRUNCATE polymarket_trades");
  const auto r = run_loadgen(daemon_.dir(), base({"--input", file, "--connections", "2", "--rate", "unlimited",
                                                  "--verify", "--wait-applied", "--allow-rejected"}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Json j(r.json);
  EXPECT_EQ(j.num({"events"}), 552);
  EXPECT_EQ(j.num({"acked"}), 550);
  EXPECT_EQ(j.num({"rejected"}), 2);
  EXPECT_EQ(j.num({"errors_by_reason", "range"}), 1);
  EXPECT_EQ(j.num({"errors_by_reason", "parse"}), 1);
  EXPECT_EQ(j.num({"end_to_end", "rows"}), 500);
  EXPECT_GT(j.num({"end_to_end", "seconds"}), 0);
  EXPECT_EQ(j.num({"verify", "ok"}), 1);
  EXPECT_EQ(j.num({"verify", "trades_acked"}), 500);
  EXPECT_EQ(trades(), 500);
  EXPECT_EQ(query_count(tdb_.url(), "SELECT count(*) FROM polymarket_trades WHERE trade_id = 'bad_price'"), 0);
}

// --input may be a pipe (e.g. `--input <(zcat trades.ndjson.gz)`): it has no length to size the
// read from, so it is read to its end.
TEST_F(LoadgenTest, ReplaysAnInputThatIsAPipe) {
  const std::string fifo = daemon_.dir() + "/input.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  std::signal(SIGPIPE, SIG_IGN);  // a reader gone early fails the feeder's writes, not the test process
  std::thread feeder([&] {
    std::ofstream out(fifo);  // blocks until pm-loadgen opens it
    for (int i = 0; i < 300; ++i) out << trade_line("cond" + std::to_string(i % 5), "pipe" + std::to_string(i)) << "\n";
  });
  const auto r = run_loadgen(daemon_.dir(), base({"--input", fifo, "--rate", "unlimited", "--verify", "--wait-applied"}));
  // Should pm-loadgen have left without reading, a reader of our own releases the feeder.
  ::close(::open(fifo.c_str(), O_RDONLY | O_NONBLOCK));
  feeder.join();
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Json j(r.json);
  EXPECT_EQ(j.num({"events"}), 300);
  EXPECT_EQ(j.num({"acked"}), 300);
  EXPECT_EQ(j.num({"verify", "ok"}), 1);
  EXPECT_EQ(trades(), 300);
}

TEST_F(LoadgenTest, DuplicatesAreAckedStoredOnceAndVerified) {
  const auto r = run_loadgen(daemon_.dir(), base({"--count", "3000", "--dup-ratio", "0.3", "--rate", "unlimited",
                                                  "--connections", "2", "--seed", "5", "--verify", "--wait-applied"}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Json j(r.json);
  EXPECT_EQ(j.num({"acked"}), 3000);
  EXPECT_EQ(j.num({"verify", "ok"}), 1);
  const double distinct = j.num({"verify", "trades_acked"});
  EXPECT_LT(distinct, 2400) << "about 30% of the lines should repeat an earlier trade";
  EXPECT_GT(distinct, 1800);
  EXPECT_EQ(trades(), static_cast<long long>(distinct));
  EXPECT_EQ(j.num({"end_to_end", "rows"}), distinct);  // waited for the distinct trades, not the lines
}

TEST_F(LoadgenTest, VerifyReportsAMissingAndAnExtraTrade) {
  const std::string file = daemon_.dir() + "/input.ndjson";
  {
    std::ofstream out(file);
    for (int i = 0; i < 200; ++i) out << trade_line("vcond", "v" + std::to_string(i)) << "\n";
  }
  auto r = run_loadgen(daemon_.dir(), base({"--input", file, "--rate", "unlimited", "--verify"}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // The same file, nothing sent: passes while the table is intact.
  r = run_loadgen(daemon_.dir(), base({"--input", file, "--verify-only", "--verify-timeout", "0"}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Json(r.json).num({"verify", "trades_acked"}), 200);

  tdb_.exec("DELETE FROM polymarket_trades WHERE trade_id = 'v17'");
  r = run_loadgen(daemon_.dir(), base({"--input", file, "--verify-only", "--verify-timeout", "0"}));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  Json missing(r.json);
  EXPECT_EQ(missing.num({"verify", "ok"}), 0);
  EXPECT_EQ(missing.num({"verify", "trades_missing"}), 1);
  EXPECT_EQ(missing.num({"verify", "trades_extra"}), 0);
  EXPECT_NE(r.output.find("missing trade (acked, not stored): vcond v17"), std::string::npos) << r.output;

  // The text summary names it too.
  const auto text = run_loadgen(daemon_.dir(), {"--socket", daemon_.socket(), "--database-url", tdb_.url(), "--input", file,
                                                "--verify-only", "--verify-timeout", "0"});
  EXPECT_EQ(text.exit_code, 1);
  EXPECT_NE(text.output.find("verify      MISMATCH"), std::string::npos) << text.output;

  tdb_.exec("INSERT INTO polymarket_trades (condition_id, trade_id) VALUES ('vcond', 'v17'), ('vcond', 'never_sent')");
  r = run_loadgen(daemon_.dir(), base({"--input", file, "--verify-only", "--verify-timeout", "0"}));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  Json extra(r.json);
  EXPECT_EQ(extra.num({"verify", "trades_missing"}), 0);
  EXPECT_EQ(extra.num({"verify", "trades_extra"}), 1);
  EXPECT_NE(r.output.find("extra trade (never sent): vcond never_sent"), std::string::npos) << r.output;
}

TEST_F(LoadgenTest, VerifyReportsABrokenG2) {
  const std::string file = daemon_.dir() + "/triggers.ndjson";
  {
    std::ofstream out(file);
    out << trigger_line("tokA", "gcond", "0.9") << "\n" << trigger_line("tokB", "gcond", "0.9") << "\n";
  }
  auto r = run_loadgen(daemon_.dir(), base({"--input", file, "--rate", "unlimited", "--verify"}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Json(r.json).num({"verify", "trigger_pairs_acked"}), 1);
  EXPECT_EQ(query_count(tdb_.url(), "SELECT count(*) FROM polymarket_first_triggers"), 1);
  // A second row for the same (condition, threshold) from the other token: G2 broken.
  tdb_.exec("DROP INDEX idx_triggers_condition_threshold_unique");
  tdb_.exec("INSERT INTO polymarket_first_triggers (token_id, condition_id, threshold, trigger_timestamp, created_at) "
            "SELECT CASE WHEN token_id = 'tokA' THEN 'tokB' ELSE 'tokA' END, condition_id, threshold, trigger_timestamp, created_at "
            "FROM polymarket_first_triggers");
  r = run_loadgen(daemon_.dir(), base({"--input", file, "--verify-only", "--verify-timeout", "0"}));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_EQ(Json(r.json).num({"verify", "trigger_g2_violations"}), 1);
  EXPECT_NE(r.output.find("G2 broken"), std::string::npos) << r.output;
}

TEST_F(LoadgenTest, KillNineOfTheDaemonMidRunEndsVerified) {
  // 12 s of load: two kills, each with a restart under a sanitizer and 2,000 rows more, fit inside.
  Loadgen load(daemon_.dir(), base({"--count", "60000", "--rate", "5000", "--connections", "4", "--seed", "3",
                                    "--give-up-after", "60", "--verify"}));
  for (int round = 0; round < 2; ++round) {
    const long long before = trades();
    ASSERT_TRUE(wait_until([&] { return trades() > before + 2000 || !load.running(); }, 60s)) << daemon_.output();
    ASSERT_TRUE(load.running()) << "the run ended before the daemon was killed";
    daemon_.kill9();
    daemon_.start();
  }
  const auto r = load.wait();
  ASSERT_EQ(r.exit_code, 0) << r.output << daemon_.output();
  const Json j(r.json);
  EXPECT_EQ(j.num({"acked"}), 60000);
  EXPECT_GE(j.num({"reconnects"}), 4) << "each connection should have reconnected at least once";
  EXPECT_EQ(j.num({"verify", "ok"}), 1);
  EXPECT_EQ(j.num({"verify", "trades_missing"}), 0);
  EXPECT_EQ(trades(), static_cast<long long>(j.num({"verify", "trades_acked"})));
}

TEST_F(LoadgenTest, VisibilityProbesAreSeenFromAnotherSessionAndTimed) {
  // 3 s (the probe's own PostgreSQL session opens before the duration starts). The summary has no
  // window of the probe's own to check a rate against: some were sent, every one acked and seen,
  // and never more than 40/s over the whole 3 s.
  const auto r = run_loadgen(daemon_.dir(), base({"--rate", "200", "--duration", "3", "--seed", "9",
                                                  "--visibility-probes", "40", "--verify"}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Json j(r.json);
  const double acked = j.num({"visible_ms", "acked"});
  EXPECT_GT(acked, 0) << "probes sent and acked";
  EXPECT_LE(acked, 130) << "40 probes/s for at most 3 s";
  EXPECT_EQ(j.num({"visible_ms", "sent"}), acked);
  EXPECT_EQ(j.num({"visible_ms", "count"}), acked) << "every acked probe seen, each one sample";
  EXPECT_EQ(j.num({"visible_ms", "missing"}), 0);
  EXPECT_EQ(j.num({"visible_ms", "probes_per_s"}), 40);
  const double p50 = j.num({"visible_ms", "p50"}), p99 = j.num({"visible_ms", "p99"}), max = j.num({"visible_ms", "max"});
  EXPECT_GT(max, 0);
  EXPECT_LE(p50, p99);
  EXPECT_LE(p99, max);
  EXPECT_GE(j.num({"visible_ms", "polls"}), acked) << "each probe, 25 ms apart, needs a poll of its own";
  EXPECT_GT(j.num({"visible_ms", "poll_period_ms"}), 0);
  EXPECT_GT(j.num({"visible_ms", "poll_round_trip_ms"}), 0);
  // The probes are rows of their own condition; the load beside them is verified without them.
  EXPECT_EQ(query_count(tdb_.url(), "SELECT count(*) FROM polymarket_trades WHERE condition_id LIKE 'pm-visibility-probe-%' "
                                    "AND trade_id ~ '^[0-9]{12}$'"),
            static_cast<long long>(acked));
  EXPECT_EQ(j.num({"verify", "ok"}), 1);
  EXPECT_EQ(trades(), static_cast<long long>(acked + j.num({"verify", "trades_acked"})));
  // The text summary has the line too.
  const auto text = run_loadgen(daemon_.dir(), {"--socket", daemon_.socket(), "--database-url", tdb_.url(), "--quiet",
                                                "--count", "20", "--rate", "100", "--visibility-probes", "20"});
  EXPECT_EQ(text.exit_code, 0) << text.output;
  EXPECT_NE(text.output.find("visibility  20 probes/s"), std::string::npos) << text.output;
}

// Coordinated omission: the daemon stopped (SIGSTOP) for 400 ms under a paced load whose window
// (20 lines) fills within the first 20 ms of the stop. The lines due during the stop cannot be
// written: timed from their first write they look fast once the daemon is back; timed from their
// due time (ack_from_due_ms), the stall shows, as a producer with trades at hand sees it. The
// probes beside the load are timed both ways too. The 400 ms is the fault's length, not a wait.
TEST_F(LoadgenTest, AStalledDaemonShowsInTheLatencyFromTheDueTimeThatTheFirstWriteHides) {
  Loadgen load(daemon_.dir(), base({"--rate", "1000", "--duration", "4", "--window", "20", "--seed", "11",
                                    "--visibility-probes", "100"}));
  // The load's own progress (events made durable and acked), not the writer's rows: on a loaded
  // machine the writer lagged, and by the time 300 rows were in the table every line had been
  // acked, so the stop below stalled nothing (from-due max 187 ms).
  const auto acked = [&] { return daemon_.metric("pm_ingest_events_received_total{type=\"trade\"}"); };
  ASSERT_TRUE(wait_until([&] { return acked() > 300 || !load.running(); }, 30s)) << daemon_.output();
  ASSERT_TRUE(load.running()) << "the run ended before the daemon was stopped";
  ASSERT_LT(acked(), 3000) << "the load ran ahead of the check: too few lines left due for the stop to hold up";
  daemon_.signal(SIGSTOP);
  std::this_thread::sleep_for(400ms);  // the stall itself
  daemon_.signal(SIGCONT);
  const auto r = load.wait();
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Json j(r.json);
  // ~400 of ~4,000 lines were due during the stop: over 5 % of them waited >= 200 ms from their
  // due time. From the first write only the ~20 in the window at the stop did (0.5 %).
  EXPECT_GE(j.num({"ack_from_due_ms", "p99"}), 200) << r.json;
  EXPECT_GE(j.num({"ack_from_due_ms", "max"}), 350) << r.json;
  EXPECT_LT(j.num({"ack_latency_ms", "p99"}), j.num({"ack_from_due_ms", "p99"}) / 2) << r.json;
  EXPECT_EQ(j.num({"ack_from_due_ms", "count"}), j.num({"ack_latency_ms", "count"}));
  // The probes (one line each, never a full window) stall too; from the due time never reads less.
  EXPECT_GE(j.num({"visible_ms", "from_due", "max"}), 350) << r.json;
  EXPECT_GE(j.num({"visible_ms", "from_due", "p50"}), j.num({"visible_ms", "p50"})) << r.json;
  EXPECT_EQ(j.num({"visible_ms", "from_due", "count"}), j.num({"visible_ms", "count"}));
}

// Probes kept from becoming visible (the writer waits on a SHARE lock this test holds; the poller
// can still read) for the same time twice: a fixed pause polls all along, the default pause grows
// with the wait (3 % of it), so the same wait costs a fraction of the polls. The pauses between
// polls are compared, not the poll counts: those depend on each poll's round trip too, which a
// sanitizer on a loaded machine stretches to milliseconds.
struct PollFigures {
  double polls = 0;
  double pause_ms = 0;  // the mean pause between two polls (the mean gap less the round trip)
};

TEST_F(LoadgenTest, ALongWaitForAProbeCostsFewPolls) {
  auto polls_while_held = [&](const std::string& fraction) {
    pqxx::connection locker(tdb_.url());
    pqxx::work lock(locker);
    lock.exec0("LOCK TABLE polymarket_trades IN SHARE MODE");
    const auto received = [&] { return daemon_.metric("pm_ingest_events_received_total{type=\"trade\"}"); };
    const double before = received();
    // 0.8 s of probes, timed by pm-loadgen once the probe's PostgreSQL session is open (its
    // set-up took seconds under a sanitizer and, inside --duration, left no time to send).
    Loadgen load(daemon_.dir(), base({"--rate", "20", "--duration", "0.8", "--visibility-probes", "10",
                                      "--visibility-poll-fraction", fraction}));
    // The wait is timed from the first event the daemon receives: pm-loadgen's own start-up took
    // up to ~0.9 s under AddressSanitizer on a busy machine, which ate into a wait timed from here.
    EXPECT_TRUE(wait_until([&] { return received() > before; }, 30s)) << daemon_.output();
    std::this_thread::sleep_for(1500ms);  // the wait being measured, not a synchronisation
    lock.commit();
    const auto r = load.wait();
    EXPECT_EQ(r.exit_code, 0) << r.output;
    const Json j(r.json);
    EXPECT_EQ(j.num({"visible_ms", "missing"}), 0);
    EXPECT_GT(j.num({"visible_ms", "count"}), 0) << "probes seen";
    EXPECT_GE(j.num({"visible_ms", "p50"}), 500) << "the probes waited for the lock";
    EXPECT_DOUBLE_EQ(j.num({"visible_ms", "poll_fraction"}), std::stod(fraction));
    return PollFigures{j.num({"visible_ms", "polls"}),
                       j.num({"visible_ms", "poll_period_ms"}) - j.num({"visible_ms", "poll_round_trip_ms"})};
  };
  const PollFigures fixed = polls_while_held("0");
  const PollFigures growing = polls_while_held("0.03");
  std::printf("[ figures ] fixed pause: %.0f polls, %.3f ms apart; growing: %.0f polls, %.3f ms apart\n", fixed.polls,
              fixed.pause_ms, growing.polls, growing.pause_ms);
  // No ratio between the two: a sleep of 200 us overshoots by milliseconds on a loaded machine,
  // which can bring the fixed pause near the growing one. A wait of at least half a second (the
  // p50 above) makes a growing pause of 3 % average some milliseconds (~7 ms for 1.5 s) and an
  // overshooting sleep only adds to it; a pause that did not grow averages 0.2 ms and a little
  // on a quiet machine.
  EXPECT_GT(growing.pause_ms, fixed.pause_ms) << "the pause did not grow with the wait";
  EXPECT_GT(growing.pause_ms, 1.0) << "the pause did not grow with the wait";
  EXPECT_GT(fixed.polls, growing.polls) << "the same wait cost the growing pause as many polls";
  EXPECT_GT(growing.polls, 10) << "it still polls while it waits";
}

TEST(LoadgenProbe, ThePollPauseIsAFractionOfTheWaitAndAtLeastTheFloor) {
  using loadgen::next_poll_pause;
  EXPECT_EQ(next_poll_pause(0ns, 200us, 0.03), 200us);
  EXPECT_EQ(next_poll_pause(5ms, 200us, 0.03), 200us);  // 150 us: the floor
  EXPECT_EQ(next_poll_pause(100ms, 200us, 0.03), 3ms);
  EXPECT_EQ(next_poll_pause(2s, 200us, 0.03), 60ms);
  EXPECT_EQ(next_poll_pause(100ms, 200us, 0), 200us);  // 0: a fixed pause
  EXPECT_EQ(next_poll_pause(100ms, 0us, 0), 0ns);
}

// CPU seconds (user + system) of this process's children reaped so far.
double children_cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_CHILDREN, &usage);
  const auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// After Ctrl-C pm-loadgen waits for its connections to drain (up to --give-up-after when nothing
// answers). Its main thread spun through that wait: the interrupt woke it at once each time round,
// a whole core taken from the daemon it measures for up to 30 s.
TEST(LoadgenCli, AfterCtrlCTheDrainIsWaitedForWithoutSpinning) {
  const std::string dir = make_temp_dir("pm_loadgen_ctrl_c");
  const std::string sock = dir + "/silent.sock";
  const int silent = listen_at(sock);  // takes connections into its backlog and never answers
  ASSERT_GE(silent, 0) << std::strerror(errno);
  const double cpu_before = children_cpu_seconds();
  Loadgen loadgen(dir, {"--count", "1000", "--socket", sock, "--give-up-after", "4"});
  // Its first progress line: a second into the run, sending into the backlog.
  ASSERT_TRUE(wait_until([&] { return read_file(loadgen.output_path()).find("] sent ") != std::string::npos || !loadgen.running(); }, 30s))
      << read_file(loadgen.output_path());
  loadgen.signal(SIGINT);
  const LoadgenRun r = loadgen.wait(60s);
  const double cpu = children_cpu_seconds() - cpu_before;
  std::printf("[ figures ] pm-loadgen's CPU over the run and its 4 s drain after Ctrl-C: %.2f s\n", cpu);
  EXPECT_EQ(r.exit_code, 1) << r.output;  // nothing was acknowledged, and it says so
  EXPECT_LT(cpu, 2.0) << "it spun while it waited for the drain: " << r.output;
  ::close(silent);
  std::filesystem::remove_all(dir);
}

TEST(LoadgenCli, HelpAndUsageErrors) {
  const std::string dir = make_temp_dir("pm_loadgen_cli");
  auto r = run_loadgen(dir, {"--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* option : {"--socket", "--rate", "--duration", "--count", "--connections", "--triggers", "--dup-ratio",
                             "--conditions", "--seed", "--input", "--json", "--verify", "--database-url",
                             "--visibility-probes", "--visibility-poll-us", "--visibility-poll-fraction"})
    EXPECT_NE(r.output.find(option), std::string::npos) << option;
  r = run_loadgen(dir, {"--socket", dir + "/none.sock"});
  EXPECT_EQ(r.exit_code, 2) << r.output;  // no stop condition
  EXPECT_NE(r.output.find("(=0.03)"), std::string::npos) << "the default as the README gives it, not 0.0299999...: " << r.output;
  // A rate that is no number names the option and the value (it printed only "pm-loadgen: stod").
  for (const char* rate : {"fast", "1e999", "5x", "inf", "1e-12"}) {
    r = run_loadgen(dir, {"--count", "1", "--rate", rate});
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find(std::string("--rate '") + rate + "': must be a positive number"), std::string::npos) << r.output;
  }
  r = run_loadgen(dir, {"--count", "1", "--visibility-probes", "-1", "--database-url", "postgresql://x/y"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = run_loadgen(dir, {"--count", "1", "--visibility-poll-fraction", "0.6"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--visibility-poll-fraction must be within 0..0.5"), std::string::npos) << r.output;
  r = run_loadgen(dir, {"--count", "10", "--socket", dir + "/none.sock", "--give-up-after", "0.3", "--quiet"});
  EXPECT_EQ(r.exit_code, 1) << r.output;  // nothing answers: gives up, says so
  EXPECT_NE(r.output.find("never acknowledged"), std::string::npos) << r.output;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pm::test

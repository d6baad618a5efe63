// pm-loadgen: the load-test harness of pm-ingestd. Drives a running daemon over its Unix socket
// with generated events (or a replayed NDJSON file) on several pipelined connections, prints a
// progress line every second and a summary at the end (text, or JSON with --json), and can check
// the result in PostgreSQL (--verify), time it end to end (--wait-applied), or measure how soon
// rows are visible to another PostgreSQL session (--visibility-probes).
// Exit codes: 0 ok; 1 events left unacknowledged, lines the daemon refused (unless
// --allow-rejected), a verification mismatch, acked probes never seen or a database error;
// 2 usage error.
#include <signal.h>

#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/program_options.hpp>

#include "daemon/cli_common.h"
#include "daemon/loadgen/loadgen_connection.h"
#include "daemon/loadgen/loadgen_probe.h"
#include "daemon/loadgen/loadgen_report.h"
#include "daemon/loadgen/loadgen_source.h"
#include "daemon/loadgen/loadgen_verify.h"
#include "repos/database_config.h"

namespace po = boost::program_options;
using namespace pm::loadgen;

namespace {

constexpr const char* kUsage =
    "Usage: pm-loadgen [options]\n"
    "\n"
    "Sends trade and trigger events to a running pm-ingestd over its Unix socket (protocol v1), on\n"
    "--connections pipelined connections, and measures throughput and ack latency (the time from\n"
    "first writing a line into the socket to reading the first cumulative ack that covers it; and\n"
    "the same ack timed from the line's due time in the --rate schedule, which also counts a line\n"
    "sent late, its window full or the sender starved: the figure a stalled daemon cannot hide,\n"
    "within the pacer's 1 ms grain). Each connection is a pm::client::ProducerClient, the\n"
    "library's producer: after a lost connection it reconnects and resends every unacknowledged\n"
    "line; lines refused `busy` are sent again after a back-off. Events come from a deterministic generator (--seed, --conditions,\n"
    "--triggers, --dup-ratio) or from --input FILE. It stops after --count events, after\n"
    "--duration seconds, at the end of --input, or on Ctrl-C; then waits for the outstanding acks.\n"
    "\n"
    "Every second a progress line goes to stderr; the summary goes to stdout.\n"
    "\n"
    "Freshness (--visibility-probes N): N probe trades per second more, paced, on a connection of\n"
    "their own (condition_id pm-visibility-probe-<pid>-<nonce>, trade_id the probe's number); a\n"
    "separate PostgreSQL session polls polymarket_trades for them while one is outstanding (a\n"
    "range scan of the primary key; between two polls --visibility-poll-fraction of\n"
    "the oldest unseen probe's wait so far, at least --visibility-poll-us). Each probe's latency\n"
    "runs from its line written into the socket (and, reported beside it, from its due time) to\n"
    "the start of the first poll that saw its row; the summary gives p50..max, the poll period\n"
    "(the precision: at most the larger of the two bounds, plus a round trip) and its round trip.\n"
    "The probes stop with the load (--duration, --count, --input) and stay in the table.\n"
    "\n"
    "Exit codes: 0 ok, 1 events left unacknowledged / lines the daemon refused (an error reply;\n"
    "not with --allow-rejected) / verification mismatch / acked probes not visible within\n"
    "--verify-timeout / database error,\n"
    "2 usage error.\n"
    "\n";

std::atomic<bool> g_interrupted{false};
void on_signal(int) { g_interrupted.store(true); }

struct Options {
  std::string socket;
  double rate = 0;
  std::optional<double> duration;
  std::optional<std::uint64_t> count;
  int connections = 1;
  GeneratorConfig gen;
  std::string input;
  std::size_t window = 10000;
  double give_up_after = 30;
  bool json = false, quiet = false, verify = false, verify_only = false, wait_applied = false;
  bool allow_rejected = false;
  double verify_timeout = 60;
  int poll_ms = 10;
  double probes = 0;       // --visibility-probes, per second; 0: off
  int probe_poll_us = 200;
  double probe_poll_fraction = 0.03;
  std::string database_url;
};

double parse_rate(const std::string& s) {
  if (s == "unlimited" || s == "0") return 0;
  const po::error refused("--rate '" + s + "': must be a positive number of events per second or 'unlimited'");
  std::size_t used = 0;
  double r = 0;
  try {
    r = std::stod(s, &used);
  } catch (const std::exception&) {  // not a number, or beyond a double (std::stod's own message: "stod")
    throw refused;
  }
  // At least one event in 1,000 s: a finite interval between two lines (1e-12 overflowed it; inf
  // meant unlimited without saying so).
  if (used != s.size() || !std::isfinite(r) || r < 1e-3) throw refused;
  return r;
}

// The options in --help order: what to send and how.
void add_run_options(po::options_description& o) {
  o.add_options()
      ("help,h", "print this help")
      ("socket", po::value<std::string>()->default_value("/run/pm-ingestd/ingest.sock"), "the daemon's Unix socket")
      ("rate", po::value<std::string>()->default_value("1000"),
       "events per second over all connections, or 'unlimited' (as fast as the daemon acks, within --window)")
      ("duration", po::value<double>(), "stop sending after this many seconds")
      ("count", po::value<std::uint64_t>(), "stop after this many events (with --input: the first N lines)")
      ("connections", po::value<int>()->default_value(1), "producer connections, each with its own pacer")
      ("triggers", po::value<double>()->default_value(0.0), "share of generated events that are triggers (0..1)")
      ("dup-ratio", po::value<double>()->default_value(0.0),
       "share of generated lines that repeat an earlier trade (0..1); the daemon must store each once")
      ("conditions", po::value<std::size_t>()->default_value(2000), "distinct condition ids of generated events")
      ("seed", po::value<std::uint64_t>()->default_value(1), "generator seed: the same seed gives the same ids (and, with the same --start-timestamp, the same lines)")
      ("start-timestamp", po::value<std::int64_t>()->default_value(0),
       "epoch seconds of the first generated event (0: now); later events advance 1 s per 100 events")
      ("input", po::value<std::string>(), "replay this NDJSON file (one event per line) instead of generating")
      ("window", po::value<std::size_t>()->default_value(10000), "unacknowledged lines per connection at most")
      ("allow-rejected", "exit 0 even when the daemon refused lines (an error reply: an --input with bad lines "
                         "on purpose); without it, a refused line is exit code 1, since every rate and count "
                         "of the run then covers fewer events than were offered")
      ("give-up-after", po::value<double>()->default_value(30),
       "seconds without a connection, or without an ack while lines are outstanding, before giving up");
}

// The options in --help order, continued: what to report and check afterwards.
void add_report_options(po::options_description& o) {
  o.add_options()
      ("json", "print the summary as one JSON object")
      ("quiet,q", "no progress lines")
      ("verify", "after the run, check in PostgreSQL that every acked trade is stored exactly once and that "
                 "first triggers followed G2; print what is missing or extra; exit 1 on a mismatch")
      ("verify-only", "send nothing: treat every event of --input (or the --count generated ones) as acked "
                      "and verify the database holds them (implies --verify)")
      ("verify-timeout", po::value<double>()->default_value(60),
       "seconds to wait for acked events to become visible before reporting them missing")
      ("wait-applied", "after the last ack, wait until every acked trade is visible in PostgreSQL and report "
                       "the end-to-end time from the first line sent")
      ("poll-ms", po::value<int>()->default_value(10), "polling interval of --wait-applied, milliseconds")
      ("visibility-probes", po::value<double>()->default_value(0),
       "probe trades per second, on a connection of their own, timed from the line written to the row visible to "
       "another PostgreSQL session (see above); 0: off")
      ("visibility-poll-us", po::value<int>()->default_value(200),
       "pause between two polls for the probes, microseconds, at least (0: none)")
      ("visibility-poll-fraction", po::value<double>()->default_value(0.03, "0.03"),
       "the pause grows to this fraction of the oldest unseen probe's wait so far (0..0.5; 0: a fixed "
       "--visibility-poll-us), so that long waits cost few polls")
      ("database-url", po::value<std::string>()->default_value(""),
       "PostgreSQL URL for --verify / --wait-applied / --visibility-probes (default: $DATABASE_URL)")
      ("database-url-file", po::value<std::string>()->default_value(""), "read the URL from this file's first line");
}

// Copies the parsed values into Options (a bad --rate throws po::error); checks nothing else.
Options options_from(const po::variables_map& vm) {
  Options opt;
  opt.socket = vm["socket"].as<std::string>();
  opt.rate = parse_rate(vm["rate"].as<std::string>());
  if (vm.count("duration")) opt.duration = vm["duration"].as<double>();
  if (vm.count("count")) opt.count = vm["count"].as<std::uint64_t>();
  opt.connections = vm["connections"].as<int>();
  opt.gen.trigger_share = vm["triggers"].as<double>();
  opt.gen.dup_ratio = vm["dup-ratio"].as<double>();
  opt.gen.conditions = vm["conditions"].as<std::size_t>();
  opt.gen.seed = vm["seed"].as<std::uint64_t>();
  opt.gen.start_timestamp_s = vm["start-timestamp"].as<std::int64_t>();
  if (opt.gen.start_timestamp_s == 0)
    opt.gen.start_timestamp_s = std::chrono::duration_cast<std::chrono::seconds>(
                                    std::chrono::system_clock::now().time_since_epoch()).count();
  if (vm.count("input")) opt.input = vm["input"].as<std::string>();
  opt.window = vm["window"].as<std::size_t>();
  opt.give_up_after = vm["give-up-after"].as<double>();
  opt.json = vm.count("json") > 0;
  opt.quiet = vm.count("quiet") > 0;
  opt.allow_rejected = vm.count("allow-rejected") > 0;
  opt.verify_only = vm.count("verify-only") > 0;
  opt.verify = vm.count("verify") > 0 || opt.verify_only;
  opt.verify_timeout = vm["verify-timeout"].as<double>();
  opt.wait_applied = vm.count("wait-applied") > 0;
  opt.poll_ms = vm["poll-ms"].as<int>();
  opt.probes = vm["visibility-probes"].as<double>();
  opt.probe_poll_us = vm["visibility-poll-us"].as<int>();
  opt.probe_poll_fraction = vm["visibility-poll-fraction"].as<double>();
  return opt;
}

// Throws po::error for the first value out of range or missing combination (in this order).
void check(const Options& opt) {
  if (opt.connections < 1) throw po::error("--connections must be at least 1");
  if (opt.window < 1) throw po::error("--window must be at least 1");
  if (opt.gen.trigger_share < 0 || opt.gen.trigger_share > 1) throw po::error("--triggers must be within 0..1");
  if (opt.gen.dup_ratio < 0 || opt.gen.dup_ratio >= 1) throw po::error("--dup-ratio must be within 0..1 (1 excluded)");
  if (opt.gen.conditions < 1) throw po::error("--conditions must be at least 1");
  if (opt.duration && !(*opt.duration > 0)) throw po::error("--duration must be positive");
  if (opt.input.empty() && !opt.count && !opt.duration && !opt.verify_only)
    throw po::error("say when to stop: --count, --duration or --input");
  if (opt.verify_only && opt.input.empty() && !opt.count) throw po::error("--verify-only needs --input or --count");
  if (opt.poll_ms < 1) throw po::error("--poll-ms must be at least 1");
  if (!(opt.probes >= 0)) throw po::error("--visibility-probes must be 0 (off) or a positive rate");
  if (opt.probe_poll_us < 0) throw po::error("--visibility-poll-us must not be negative");
  if (!(opt.probe_poll_fraction >= 0 && opt.probe_poll_fraction <= 0.5))
    throw po::error("--visibility-poll-fraction must be within 0..0.5");
  if (opt.probes > 0 && opt.verify_only) throw po::error("--visibility-probes sends: not with --verify-only");
}

// The database URL, when --verify, --wait-applied or --visibility-probes need one.
void resolve_database(const po::variables_map& vm, Options& opt) {
  if (!opt.verify && !opt.wait_applied && !(opt.probes > 0)) return;
  auto url = pm::resolve_database_url(vm["database-url"].as<std::string>(), vm["database-url-file"].as<std::string>());
  if (!url) throw po::error("--verify, --wait-applied and --visibility-probes need --database-url, --database-url-file or DATABASE_URL");
  opt.database_url = *url;
}

// The options, or nullopt with exit_code set: 0 after --help, 2 after a usage error (printed
// with the usage on stderr).
std::optional<Options> parse(int argc, char** argv, int& exit_code) {
  po::options_description o("Options");
  add_run_options(o);
  add_report_options(o);
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, o), vm);
    po::notify(vm);
    if (vm.count("help")) {
      std::cout << kUsage << o;
      exit_code = 0;
      return std::nullopt;
    }
    Options opt = options_from(vm);
    check(opt);
    resolve_database(vm, opt);
    return opt;
  } catch (const std::exception& e) {
    std::cerr << "pm-loadgen: " << pm::redact_url(e.what()) << "\n\n" << kUsage << o;
    exit_code = 2;
    return std::nullopt;
  }
}

std::chrono::milliseconds millis(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
}

using Connections = std::vector<std::unique_ptr<ProducerConnection>>;

void install_signal_handlers() {
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

std::unique_ptr<EventSource> make_source(const Options& opt) {
  const bool keep_keys = opt.verify || opt.wait_applied;
  return opt.input.empty() ? EventSource::generated(opt.gen, opt.count, keep_keys)
                           : EventSource::from_file(opt.input, opt.count, keep_keys);
}

Connections make_connections(const Options& opt, EventSource& source, LoadStats& stats) {
  Connections connections;
  for (int i = 0; i < opt.connections; ++i) {
    ConnectionConfig c;
    c.socket_path = opt.socket;
    c.rate = opt.rate / opt.connections;
    c.window = opt.window;
    c.give_up_after = millis(opt.give_up_after);
    connections.push_back(std::make_unique<ProducerConnection>(c, source, stats));
  }
  return connections;
}

// Counts the connection threads that have finished; the main thread waits on it between
// progress lines. cross() from the connection threads, wait() from the main thread.
class FinishLine {
 public:
  void cross() {
    std::lock_guard lock(mu_);
    ++finished_;
    cv_.notify_all();
  }
  // Waits until `tick`, Ctrl-C (when `wake_on_interrupt`: once it was passed on, the threads'
  // drain is waited for like any run), or all `total` threads finished; true when they all have.
  bool wait(std::chrono::steady_clock::time_point tick, int total, bool wake_on_interrupt) {
    std::unique_lock lock(mu_);
    // Wake every second for the progress line, or every 50 ms to notice Ctrl-C, or when done.
    while (finished_ < total && std::chrono::steady_clock::now() < tick && !(wake_on_interrupt && g_interrupted.load()))
      cv_.wait_until(lock, std::min(tick, std::chrono::steady_clock::now() + std::chrono::milliseconds(50)));
    return finished_ == total;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int finished_ = 0;
};

// Prints one progress line (unless --quiet) and starts a new latency interval; returns the acked
// count it printed against, the next line's `acked_before`.
// `seconds`: since the line before (its rate's divisor).
std::uint64_t print_progress(const Options& opt, const Connections& connections, LoadStats& stats,
                             std::chrono::steady_clock::time_point start, std::uint64_t acked_before, double seconds) {
  ProgressCounts totals;
  for (auto& c : connections) {
    const pm::client::ProducerStats s = c->client_stats();
    totals.unacked += c->unacked();
    totals.written += s.written;
    totals.reconnects += s.reconnects;
  }
  totals.acked = stats.acked.load();
  totals.rejected = stats.rejected.load();
  const auto interval = stats.interval.snapshot_and_reset();
  if (!opt.quiet)
    std::cerr << format_progress(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), totals,
                                 totals.acked - acked_before, seconds, interval)
              << std::endl;
  return totals.acked;
}

// Runs every connection on its own thread until all have finished; meanwhile prints a progress
// line every second and passes Ctrl-C on to the source.
void run_connections(const Options& opt, const Connections& connections, EventSource& source, LoadStats& stats,
                     std::chrono::steady_clock::time_point start) {
  FinishLine finish;
  std::vector<std::thread> threads;
  for (auto& c : connections)
    threads.emplace_back([&finish, conn = c.get()] {
      conn->run();
      finish.cross();
    });
  auto last_line = start;
  auto next_line = start + std::chrono::seconds(1);
  std::uint64_t acked_before = 0;
  bool interrupt_passed_on = false;
  for (;;) {
    const bool done = finish.wait(next_line, opt.connections, !interrupt_passed_on);
    if (!interrupt_passed_on && g_interrupted.load()) {
      source.stop();
      interrupt_passed_on = true;  // and no longer woken by it: it spun a core through the drain
    }
    if (done) break;
    const auto now = std::chrono::steady_clock::now();
    if (now < next_line) continue;
    // The rate over the time since the last line: a main thread woken late counted 1.3 s as one.
    acked_before = print_progress(opt, connections, stats, start, acked_before,
                                  std::chrono::duration<double>(now - last_line).count());
    last_line = now;
    while (next_line <= now) next_line += std::chrono::seconds(1);
  }
  for (auto& t : threads) t.join();
}

// The summary's counters and timings from the finished run.
void summarize(const LoadStats& stats, const Connections& connections, const EventSource& source, RunSummary& summary) {
  summary.events = source.produced();
  for (auto& c : connections) {
    const pm::client::ProducerStats s = c->client_stats();
    summary.written += s.written;
    summary.busy += s.busy;
    summary.resent += s.resent;
    summary.reconnects += s.reconnects;
  }
  summary.acked = stats.acked.load();
  summary.rejected = stats.rejected.load();
  summary.unacked = stats.abandoned.load();
  summary.gave_up = stats.gave_up.load();
  const std::int64_t first = stats.first_send_ns.load(), last = stats.last_ack_ns.load();
  summary.seconds = first && last > first ? static_cast<double>(last - first) / 1e9 : 0.0;
  summary.throughput_eps = summary.seconds > 0 ? static_cast<double>(summary.acked) / summary.seconds : 0.0;
  summary.behind_schedule_max_ms = static_cast<double>(stats.max_behind_ns.load()) / 1e6;
  summary.latency = stats.latency.snapshot();
  summary.latency_from_due = stats.latency_from_due.snapshot();
  summary.errors_by_reason = stats.errors_by_reason();
}

// --wait-applied: the end-to-end time from the first line sent (`first_ns`) until every acked
// trade is visible; false (with a message) when that did not happen within --verify-timeout.
bool measure_end_to_end(const Options& opt, const Connections& connections, const EventSource& source,
                        std::int64_t first_ns, RunSummary& summary) {
  std::vector<std::uint64_t> hints;
  for (auto& c : connections)
    for (std::uint64_t i : c->recent_acked()) hints.push_back(i);
  const AppliedWait w =
      wait_applied(source, hints, opt.database_url, millis(opt.verify_timeout), std::chrono::milliseconds(opt.poll_ms));
  if (w.seen_ns == 0) {
    std::cerr << "pm-loadgen: acked events were not all visible in PostgreSQL within --verify-timeout\n";
    return false;
  }
  summary.end_to_end_seconds = static_cast<double>(w.seen_ns - first_ns) / 1e9;
  summary.end_to_end_rows = w.rows;
  return true;
}

// --visibility-probes: the probe, connected to PostgreSQL but not started (null when off). Throws
// when PostgreSQL is unreachable.
std::unique_ptr<VisibilityProbe> connect_probe(const Options& opt) {
  if (!(opt.probes > 0)) return nullptr;
  ProbeConfig c;
  c.socket_path = opt.socket;
  c.database_url = opt.database_url;
  c.condition_id = new_probe_condition();
  c.rate = opt.probes;
  c.poll_pause = std::chrono::microseconds(opt.probe_poll_us);
  c.poll_fraction = opt.probe_poll_fraction;
  c.give_up_after = millis(opt.give_up_after);
  c.timeout = millis(opt.verify_timeout);
  auto probe = std::make_unique<VisibilityProbe>(std::move(c));
  probe->connect();
  return probe;
}

// Sends the source's events on --connections connections (and the probes beside them) and fills
// the summary; false when --wait-applied timed out.
bool send(const Options& opt, EventSource& source, RunSummary& summary) {
  LoadStats stats;
  const Connections connections = make_connections(opt, source, stats);
  // The probe's PostgreSQL session opens before the clock starts: --duration is the load's, and
  // that set-up (seconds under a sanitizer) would otherwise eat into it, or all of it.
  const auto probe = connect_probe(opt);
  const auto start = std::chrono::steady_clock::now();
  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (opt.duration) deadline = start + millis(*opt.duration);
  if (deadline) source.set_deadline(*deadline);
  if (probe) probe->start(deadline);
  run_connections(opt, connections, source, stats, start);
  if (probe) summary.visibility = probe->finish();
  summarize(stats, connections, source, summary);
  const std::int64_t first = stats.first_send_ns.load();
  if (opt.wait_applied && first) return measure_end_to_end(opt, connections, source, first, summary);
  return true;
}

void print_summary(const Options& opt, const RunSummary& summary) {
  std::cout << (opt.json ? format_json(summary) + "\n" : format_text(summary)) << std::flush;
  if (summary.gave_up > 0)
    std::cerr << "pm-loadgen: gave up on " << summary.gave_up << " connection(s) after " << opt.give_up_after
              << " s without a connection, an ack, or a line's acceptance after `busy`; " << summary.unacked
              << " event(s) were never acknowledged, and those connections sent none of the run's events after them\n";
}

// The run after parsing: send (or, with --verify-only, take every event as acked), verify,
// report. Returns the exit code; database and input errors throw.
int run(const Options& opt) {
  int exit_code = 0;
  std::unique_ptr<EventSource> source = make_source(opt);
  RunSummary summary;
  summary.connections = opt.connections;
  summary.target_rate = opt.rate;
  if (opt.verify_only) {
    source->produce_all_as_acked();
    summary.events = source->produced();
  } else if (!send(opt, *source, summary)) {
    exit_code = 1;
  }
  if (opt.verify) {
    summary.verify = verify(*source, opt.database_url, millis(opt.verify_timeout));
    if (!summary.verify->ok) exit_code = 1;
  }
  if (summary.unacked > 0 || summary.gave_up > 0) exit_code = 1;
  const std::uint64_t refused = summary.rejected + (summary.visibility ? summary.visibility->rejected : 0);
  if (refused > 0 && !opt.allow_rejected) {
    std::cerr << "pm-loadgen: the daemon refused " << refused
              << " line(s) (errors_by_reason in the summary); exit 1 (--allow-rejected to accept)\n";
    exit_code = 1;
  }
  if (summary.visibility && summary.visibility->missing > 0) {
    std::cerr << "pm-loadgen: " << summary.visibility->missing
              << " acked visibility probe(s) were not visible in PostgreSQL within --verify-timeout\n";
    exit_code = 1;
  }
  print_summary(opt, summary);
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  int exit_code = 0;
  const auto parsed = parse(argc, argv, exit_code);
  pm::scrub_argv_passwords(argc, argv);
  if (!parsed) return exit_code;
  install_signal_handlers();
  try {
    return run(*parsed);
  } catch (const std::exception& e) {
    std::cerr << "pm-loadgen: " << pm::redact_url(e.what()) << "\n";
    return 1;
  }
}

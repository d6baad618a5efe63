#pragma once
// LoadDriver: producers that behave as protocol.md asks: send chunks, wait for the ack, and after
// a lost connection resend every line not acknowledged. They record what was sent and what was
// acked, so a test can check PostgreSQL against it after crashes and failovers. With triggers, a
// chunk may also carry a trigger whose (condition, threshold) other producers send too (G2).
// One daemon socket per producer, in turn: several sockets spread producers over several daemons.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace pm::test {

class DaemonHarness;

using TriggerKey = std::pair<std::string, int>;  // (condition_id, threshold in 64ths)

struct LoadOptions {
  int producers = 4;
  std::uint32_t seed = 1;
  bool triggers = false;
  int conditions = 3;  // producers share "cond0".."condN-1"
  std::string trade_prefix = "p";  // trade ids are <prefix><producer>_<n>
};

class LoadDriver {
 public:
  LoadDriver(std::vector<std::string> sockets, LoadOptions options);
  LoadDriver(std::string socket, int producers, std::uint32_t seed);
  ~LoadDriver();

  // Stops after each producer's outstanding chunk is acked (a daemon must be up).
  void stop();
  std::set<std::string> sent();
  std::set<std::string> acked();
  std::size_t acked_count();
  std::set<TriggerKey> triggers_sent();
  std::set<TriggerKey> triggers_acked();
  int reconnects() const { return reconnects_.load(); }
  static std::string threshold_text(int sixty_fourths);

 private:
  void run(int producer);

  std::vector<std::string> sockets_;
  LoadOptions options_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> reconnects_{0};
  std::mutex mu_;
  std::set<std::string> sent_, acked_;
  std::set<TriggerKey> triggers_sent_, triggers_acked_;
  std::vector<std::thread> threads_;
};

// The LSN of the last record in `daemon`'s log: where its latest start found the log ending (its
// "log ... recovered: N records up to lsn L" line) plus the records appended since
// (pm_ingest_wal_appended_records_total, counted before append() returns, so before any ack of
// them). -1 when either cannot be read.
long long log_end_lsn(const DaemonHarness& daemon);
// Waits until the checkpoint of `instance` (read from `url`) reaches log_end_lsn(daemon): every
// record the daemon appended, so every event it acked, is applied. For the final checks once a
// load has stopped. pm_ingest_wal_unapplied_events == 0 is no such condition: the gauge is sampled
// every 250 ms, and a 0 sampled before the last chunks arrived still reads 0 after their acks.
::testing::AssertionResult wait_until_log_applied(const std::string& url, const DaemonHarness& daemon,
                                                  std::chrono::milliseconds timeout = std::chrono::seconds(60),
                                                  const std::string& instance = "default");

// Every acked trade is stored, nothing unsent is (waits up to `timeout` for the count).
void expect_exactly_what_was_acked(const std::string& url, LoadDriver& load,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(60));
// The same, for trades several drivers sent (acked by any of them, sent by any of them).
void expect_exactly_what_was_acked(const std::string& url, const std::set<std::string>& acked, const std::set<std::string>& sent,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(60));
// Exactly once: the checkpoint of `instance` counts every applied event, so a re-applied batch
// would push the count past the log's last LSN.
void expect_each_record_applied_once(const std::string& url, const std::string& instance = "default");
// One first trigger per acked (condition, threshold), none unsent; trade and trigger watermarks
// equal the newest stored timestamp of their condition / threshold. Reads once, does not wait:
// call it after wait_until_log_applied (a trigger can be in a later batch than its chunk's trades).
void expect_triggers_and_watermarks_consistent(const std::string& url, LoadDriver& load);
void expect_triggers_and_watermarks_consistent(const std::string& url, const std::set<TriggerKey>& acked,
                                               const std::set<TriggerKey>& sent);

}  // namespace pm::test

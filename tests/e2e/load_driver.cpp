#include "tests/e2e/load_driver.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <random>

#include <pqxx/pqxx>

#include "tests/e2e/e2e_util.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/process.h"
#include "tests/support/producer.h"

namespace pm::test {

using namespace std::chrono_literals;

LoadDriver::LoadDriver(std::vector<std::string> sockets, LoadOptions options)
    : sockets_(std::move(sockets)), options_(std::move(options)) {
  for (int p = 0; p < options_.producers; ++p) threads_.emplace_back([this, p] { run(p); });
}

LoadDriver::LoadDriver(std::string socket, int producers, std::uint32_t seed)
    : LoadDriver(std::vector<std::string>{std::move(socket)}, LoadOptions{producers, seed}) {}

LoadDriver::~LoadDriver() { stop(); }

void LoadDriver::stop() {
  stopping_ = true;
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

std::set<std::string> LoadDriver::sent() {
  std::lock_guard lock(mu_);
  return sent_;
}
std::set<std::string> LoadDriver::acked() {
  std::lock_guard lock(mu_);
  return acked_;
}
std::size_t LoadDriver::acked_count() {
  std::lock_guard lock(mu_);
  return acked_.size();
}
std::set<TriggerKey> LoadDriver::triggers_sent() {
  std::lock_guard lock(mu_);
  return triggers_sent_;
}
std::set<TriggerKey> LoadDriver::triggers_acked() {
  std::lock_guard lock(mu_);
  return triggers_acked_;
}

std::string LoadDriver::threshold_text(int sixty_fourths) { return std::to_string(sixty_fourths / 64.0); }

void LoadDriver::run(int producer) {
  std::mt19937 rng(options_.seed + static_cast<std::uint32_t>(producer));
  const std::string& socket = sockets_[static_cast<std::size_t>(producer) % sockets_.size()];
  const std::string cid = "cond" + std::to_string(producer % options_.conditions);
  std::vector<std::string> unacked_ids;
  std::vector<TriggerKey> unacked_triggers;
  std::vector<std::string> lines;
  int next = 0;
  std::unique_ptr<Producer> conn;
  while (!stopping_ || !unacked_ids.empty()) {
    if (!conn) {
      try {
        conn = std::make_unique<Producer>(socket);
      } catch (const std::exception&) {
        std::this_thread::sleep_for(5ms);  // retry interval while the daemon is down, not a sync point
        continue;
      }
    }
    if (unacked_ids.empty()) {
      lines.clear();
      const int n = std::uniform_int_distribution<int>(1, 40)(rng);
      for (int i = 0; i < n; ++i) {
        unacked_ids.push_back(options_.trade_prefix + std::to_string(producer) + "_" + std::to_string(next++));
        lines.push_back(trade_line(cid, unacked_ids.back(), 1'700'000'000 + next));
      }
      if (options_.triggers && std::uniform_int_distribution<int>(0, 3)(rng) == 0) {
        const int threshold = std::uniform_int_distribution<int>(1, 63)(rng);
        unacked_triggers.push_back({cid, threshold});
        lines.push_back(trigger_line("tok" + std::to_string(producer), cid, threshold_text(threshold),
                                     1'700'000'000'000 + next));
      }
    }
    {
      std::lock_guard lock(mu_);
      sent_.insert(unacked_ids.begin(), unacked_ids.end());
      triggers_sent_.insert(unacked_triggers.begin(), unacked_triggers.end());
    }
    const std::uint64_t target = conn->last_ack() + lines.size();
    std::vector<Reply> seen;
    if (!conn->send(lines) || !conn->wait_ack(target, 30s, &seen)) {
      conn.reset();  // connection lost before the ack: resend the same lines on a new one
      ++reconnects_;
      continue;
    }
    // `busy` (a daemon shutting down, a full budget): not stored; send the chunk again, as
    // protocol.md asks. Any other error is a failure.
    bool busy = false;
    for (const auto& r : seen) {
      busy = busy || r.error == "busy";
      ASSERT_TRUE(r.is_ack || r.error == "busy") << "unexpected error reply: " << r.error << " " << r.detail;
    }
    if (busy) {
      conn.reset();
      ++reconnects_;
      continue;
    }
    std::lock_guard lock(mu_);
    acked_.insert(unacked_ids.begin(), unacked_ids.end());
    triggers_acked_.insert(unacked_triggers.begin(), unacked_triggers.end());
    unacked_ids.clear();
    unacked_triggers.clear();
  }
}

long long log_end_lsn(const DaemonHarness& daemon) {
  const std::string marker = " records up to lsn ";
  const std::string output = daemon.output();
  const std::size_t at = output.rfind(marker);  // the latest start's (the output file is appended to)
  if (at == std::string::npos) return -1;
  const long long recovered_to = std::atoll(output.c_str() + at + marker.size());
  const double appended = daemon.metric("pm_ingest_wal_appended_records_total");
  if (appended < 0) return -1;
  return recovered_to + static_cast<long long>(appended);
}

::testing::AssertionResult wait_until_log_applied(const std::string& url, const DaemonHarness& daemon,
                                                  std::chrono::milliseconds timeout, const std::string& instance) {
  long long end = -1, checkpoint = -1;
  const auto applied = [&] {
    end = log_end_lsn(daemon);
    try {
      checkpoint = query_count(url, "SELECT coalesce(max(lsn), -1) FROM pm_ingest_checkpoints WHERE instance_id = '" + instance + "'");
    } catch (const std::exception&) {  // the server restarting, or not promoted yet
      checkpoint = -1;
    }
    return end >= 0 && checkpoint >= end;
  };
  if (wait_until(applied, timeout)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "instance " << instance << ": checkpoint at lsn " << checkpoint
                                       << ", the daemon's log ends at lsn " << end << " (-1: unknown)";
}

void expect_exactly_what_was_acked(const std::string& url, LoadDriver& load, std::chrono::milliseconds timeout) {
  expect_exactly_what_was_acked(url, load.acked(), load.sent(), timeout);
}

void expect_exactly_what_was_acked(const std::string& url, const std::set<std::string>& acked, const std::set<std::string>& sent,
                                   std::chrono::milliseconds timeout) {
  ASSERT_TRUE(wait_until([&] { return query_count(url, "SELECT count(*) FROM polymarket_trades") >= static_cast<long long>(acked.size()); },
                         timeout));
  const auto stored = trade_ids(url);
  std::size_t missing = 0, unsent = 0;
  for (const auto& id : acked) missing += stored.count(id) == 0;
  for (const auto& id : stored) unsent += sent.count(id) == 0;
  EXPECT_EQ(missing, 0u) << "acked trades missing from PostgreSQL";
  EXPECT_EQ(unsent, 0u) << "trades in PostgreSQL that were never sent";
  EXPECT_GE(stored.size(), acked.size());
  EXPECT_LE(stored.size(), sent.size());
}

void expect_each_record_applied_once(const std::string& url, const std::string& instance) {
  pqxx::connection c(url);
  pqxx::nontransaction tx(c);
  auto row = tx.exec1("SELECT lsn, applied_events FROM pm_ingest_checkpoints WHERE instance_id = " + tx.quote(instance));
  EXPECT_EQ(row[0].as<long long>(), row[1].as<long long>()) << "instance " << instance;
}

void expect_triggers_and_watermarks_consistent(const std::string& url, LoadDriver& load) {
  expect_triggers_and_watermarks_consistent(url, load.triggers_acked(), load.triggers_sent());
}

void expect_triggers_and_watermarks_consistent(const std::string& url, const std::set<TriggerKey>& acked,
                                               const std::set<TriggerKey>& sent) {
  pqxx::connection c(url);
  pqxx::nontransaction tx(c);
  std::set<TriggerKey> stored;
  for (const auto& row : tx.exec("SELECT condition_id, (threshold * 64)::int, count(*) FROM polymarket_first_triggers GROUP BY 1, 2")) {
    EXPECT_EQ(row[2].as<long long>(), 1) << "G2: more than one first trigger for " << row[0].c_str();
    stored.insert({row[0].as<std::string>(), row[1].as<int>()});
  }
  std::size_t missing = 0, unsent = 0;
  for (const auto& key : acked) missing += stored.count(key) == 0;
  for (const auto& key : stored) unsent += sent.count(key) == 0;
  EXPECT_EQ(missing, 0u) << "acked first triggers missing from PostgreSQL";
  EXPECT_EQ(unsent, 0u) << "first triggers that were never sent";
  const auto trade_marks = tx.exec(
      "SELECT w.condition_id, w.last_timestamp, (SELECT max(timestamp) FROM polymarket_trades t WHERE t.condition_id = w.condition_id) "
      "FROM trade_watermarks w");
  for (const auto& row : trade_marks)
    EXPECT_EQ(row[1].as<long long>(), row[2].as<long long>(0)) << "trade watermark of " << row[0].c_str();
  EXPECT_EQ(trade_marks.size(), static_cast<std::size_t>(query_count(url, "SELECT count(DISTINCT condition_id) FROM polymarket_trades")));
  const auto trigger_marks = tx.exec(
      "SELECT w.threshold, w.last_timestamp, (SELECT max(trigger_timestamp) FROM polymarket_first_triggers f WHERE f.threshold = w.threshold) "
      "FROM trigger_watermarks w");
  for (const auto& row : trigger_marks)
    EXPECT_EQ(row[1].as<long long>(), row[2].as<long long>(0)) << "trigger watermark of threshold " << row[0].c_str();
  EXPECT_EQ(trigger_marks.size(), static_cast<std::size_t>(query_count(url, "SELECT count(DISTINCT threshold) FROM polymarket_first_triggers")))
      << "a threshold with first triggers and no watermark";
}

}  // namespace pm::test

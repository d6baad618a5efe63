#include "daemon/loadgen/loadgen_probe.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <exception>
#include <stdexcept>

#include <fmt/format.h>
#include <pqxx/pqxx>

namespace pm::loadgen {

struct VisibilityProbe::Db {
  explicit Db(const std::string& url) : conn(url) {
    conn.prepare("probe_rows",
                 "SELECT trade_id FROM polymarket_trades WHERE condition_id = $1 AND trade_id >= $2 ORDER BY trade_id");
  }
  pqxx::connection conn;
  std::exception_ptr error;  // what ended the poller early, if anything
};

std::string new_probe_condition() {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  return fmt::format("pm-visibility-probe-{}-{:x}", ::getpid(), ns);
}

VisibilityProbe::VisibilityProbe(ProbeConfig config)
    : config_(std::move(config)), source_(EventSource::probes(config_.condition_id)) {
  ConnectionConfig c;
  c.socket_path = config_.socket_path;
  c.rate = config_.rate;
  c.give_up_after = config_.give_up_after;
  c.on_written = [this](std::uint64_t index, std::int64_t due_ns, std::int64_t ns) {
    std::lock_guard lock(sent_mu_);
    if (index >= sent_ns_.size()) {
      sent_ns_.resize(index + 1, 0);
      due_ns_.resize(index + 1, 0);
    }
    if (sent_ns_[index] == 0) {  // the first write: a resend does not restart the clock
      sent_ns_[index] = ns;
      due_ns_[index] = due_ns;
    }
  };
  connection_ = std::make_unique<ProducerConnection>(c, *source_, stats_);
}

VisibilityProbe::~VisibilityProbe() {
  source_->stop();
  stop_polling_.store(true);
  if (sender_.joinable()) sender_.join();
  if (poller_.joinable()) poller_.join();
}

void VisibilityProbe::connect() { db_ = std::make_unique<Db>(config_.database_url); }

void VisibilityProbe::start(std::optional<std::chrono::steady_clock::time_point> deadline) {
  if (deadline) source_->set_deadline(*deadline);
  sender_ = std::thread([this] { send_loop(); });
  poller_ = std::thread([this] { poll_loop(); });
}

void VisibilityProbe::send_loop() {
  connection_->run();
  sending_done_ns_.store(steady_ns());
  sending_done_.store(true);
}

void VisibilityProbe::poll_loop() {
  try {
    while (!stop_polling_.load()) {
      const bool outstanding = low_watermark() < source_->produced();
      if (outstanding) poll_once();
      else prev_poll_ns_ = 0;  // nothing to see: no query; the next one starts a new run of polls
      if (sending_done_.load() &&
          (all_acked_seen() || steady_ns() - sending_done_ns_.load() > config_.timeout.count() * 1'000'000))
        break;
      const auto pause = outstanding ? pause_while_waiting() : std::max<std::chrono::nanoseconds>(config_.poll_pause, std::chrono::microseconds(100));
      if (pause.count() > 0) std::this_thread::sleep_for(pause);
    }
  } catch (...) {
    db_->error = std::current_exception();
  }
}

std::chrono::nanoseconds VisibilityProbe::pause_while_waiting() {
  const std::uint64_t oldest = low_watermark();
  std::int64_t sent = 0;
  {
    std::lock_guard lock(sent_mu_);
    if (oldest < sent_ns_.size()) sent = sent_ns_[oldest];
  }
  const std::int64_t waited = sent == 0 ? 0 : std::max<std::int64_t>(0, steady_ns() - sent);
  return next_poll_pause(std::chrono::nanoseconds(waited), config_.poll_pause, config_.poll_fraction);
}

void VisibilityProbe::poll_once() {
  const std::string from = EventSource::probe_trade_id(low_watermark());
  const std::int64_t t0 = steady_ns();  // the rows returned were visible when the poll started (within its round trip)
  pqxx::nontransaction tx(db_->conn);
  const pqxx::result rows = tx.exec_prepared("probe_rows", config_.condition_id, from);
  const std::int64_t t1 = steady_ns();
  ++polls_;
  poll_busy_ns_ += t1 - t0;
  if (prev_poll_ns_ != 0) {
    poll_gaps_ns_ += t0 - prev_poll_ns_;
    ++poll_gaps_;
  }
  prev_poll_ns_ = t0;
  for (const auto& row : rows) {
    const std::string_view id(row[0].c_str(), row[0].size());
    std::uint64_t index = 0;
    if (std::from_chars(id.data(), id.data() + id.size(), index).ec != std::errc{}) continue;
    if (index >= visible_ns_.size()) visible_ns_.resize(index + 1, 0);
    if (visible_ns_[index] == 0) visible_ns_[index] = t0;
  }
}

std::uint64_t VisibilityProbe::low_watermark() {
  const std::uint64_t produced = source_->produced();
  auto settled = [&](std::uint64_t i) {
    return (i < visible_ns_.size() && visible_ns_[i] != 0) || source_->status(i) == EventStatus::Rejected;
  };
  while (low_ < produced && settled(low_)) ++low_;
  return low_;
}

bool VisibilityProbe::all_acked_seen() {
  const std::uint64_t produced = source_->produced();
  for (std::uint64_t i = low_watermark(); i < produced; ++i)
    if (source_->status(i) == EventStatus::Acked && (i >= visible_ns_.size() || visible_ns_[i] == 0)) return false;
  return true;
}

ProbeReport VisibilityProbe::finish() {
  source_->stop();
  if (sender_.joinable()) sender_.join();
  if (poller_.joinable()) poller_.join();
  if (db_ && db_->error) std::rethrow_exception(db_->error);
  return report();
}

ProbeReport VisibilityProbe::report() const {
  std::lock_guard lock(sent_mu_);
  ProbeReport r;
  r.condition_id = config_.condition_id;
  r.rate = config_.rate;
  LatencyHistogram visible, visible_from_due;
  for (std::uint64_t i = 0; i < source_->produced(); ++i) {
    const EventStatus s = source_->status(i);
    const std::int64_t sent = i < sent_ns_.size() ? sent_ns_[i] : 0, seen = i < visible_ns_.size() ? visible_ns_[i] : 0;
    if (sent) ++r.sent;
    if (s == EventStatus::Rejected) ++r.rejected;
    if (s != EventStatus::Acked) continue;
    ++r.acked;
    if (!seen || !sent) {
      ++r.missing;
      continue;
    }
    ++r.seen;
    visible.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, seen - sent)));
    visible_from_due.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, seen - due_ns_[i])));
  }
  r.visible = visible.snapshot();
  r.visible_from_due = visible_from_due.snapshot();
  r.ack = stats_.latency.snapshot();
  r.polls = polls_;
  r.poll_period_ms = poll_gaps_ ? static_cast<double>(poll_gaps_ns_) / 1e6 / static_cast<double>(poll_gaps_) : 0;
  r.poll_fraction = config_.poll_fraction;
  r.poll_round_trip_ms = polls_ ? static_cast<double>(poll_busy_ns_) / 1e6 / static_cast<double>(polls_) : 0;
  return r;
}

}  // namespace pm::loadgen

#include "daemon/loadgen/loadgen_connection.h"

#include <thread>

namespace pm::loadgen {

namespace {

void atomic_max(std::atomic<std::int64_t>& a, std::int64_t v) {
  std::int64_t seen = a.load(std::memory_order_relaxed);
  while (v > seen && !a.compare_exchange_weak(seen, v, std::memory_order_relaxed)) {
  }
}

std::int64_t ns_of(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

client::ProducerOptions client_options(const ConnectionConfig& c) {
  client::ProducerOptions o;
  o.socket_path = c.socket_path;
  o.max_in_flight = c.window;
  o.give_up_after = c.give_up_after;
  // A load generator retries sooner than the client's defaults: a restart of the daemon under
  // load should cost milliseconds of the measurement, not seconds.
  o.reconnect_initial = std::chrono::milliseconds(5);
  o.reconnect_max = std::chrono::milliseconds(200);
  o.busy_initial = std::chrono::milliseconds(10);
  o.busy_max = std::chrono::milliseconds(1000);
  return o;
}

}  // namespace

std::int64_t steady_ns() { return ns_of(std::chrono::steady_clock::now()); }

void LoadStats::count_error(const std::string& reason) {
  std::lock_guard lock(errors_mu_);
  ++errors_[reason];
}

std::map<std::string, std::uint64_t> LoadStats::errors_by_reason() const {
  std::lock_guard lock(errors_mu_);
  return errors_;
}

ProducerConnection::ProducerConnection(ConnectionConfig config, EventSource& source, LoadStats& stats)
    : config_(std::move(config)),
      source_(source),
      stats_(stats),
      client_(std::make_unique<client::ProducerClient>(client_options(config_))) {}

ProducerConnection::~ProducerConnection() = default;

client::ProducerStats ProducerConnection::client_stats() const { return client_->stats(); }

std::vector<std::uint64_t> ProducerConnection::recent_acked() const {
  std::vector<std::uint64_t> out;
  for (std::size_t i = 0; i < recent_.size(); ++i) out.push_back(recent_[(recent_next_ + i) % recent_.size()]);
  return out;
}

void ProducerConnection::run() {
  period_ = config_.rate > 0 ? static_cast<std::int64_t>(1e9 / config_.rate) : 0;
  next_due_ = steady_ns();
  std::vector<client::ProducerClient::Outgoing> due;
  while (!gave_up_.load(std::memory_order_relaxed)) {
    wait_for_due();
    take_due(due);
    if (due.empty()) break;  // the source is exhausted
    hand_over(due);
  }
  // Every line resolves by then: acked, rejected, or given up on after give_up_after without
  // progress (the client's rule; the day is only a bound). Once the client gave up, the line
  // sent meanwhile is given up on at once.
  client_->close(gave_up_.load() ? std::chrono::milliseconds(0) : std::chrono::hours(24));
}

// The pacer, with a millisecond's grain: it sleeps past the next due time to a whole number of
// milliseconds and then sends every line due, at once (one wake-up per millisecond at most).
void ProducerConnection::wait_for_due() const {
  if (period_ == 0) return;
  const std::int64_t ahead = next_due_ - steady_ns();
  constexpr std::int64_t kGrain = 1'000'000;
  if (ahead > 0) std::this_thread::sleep_for(std::chrono::nanoseconds((ahead + kGrain - 1) / kGrain * kGrain));
}

// The lines due now (all of them up to kHandOver; unpaced, kHandOver), in source order.
void ProducerConnection::take_due(std::vector<client::ProducerClient::Outgoing>& due) {
  due.clear();
  const std::int64_t now = steady_ns();
  std::string line;
  std::uint64_t index = 0;
  while (due.size() < kHandOver && (period_ == 0 || next_due_ <= now)) {
    line.clear();
    if (!source_.next(line, index)) break;
    const std::int64_t due_ns = period_ > 0 ? next_due_ : now;
    if (period_ > 0) {
      atomic_max(stats_.max_behind_ns, now - next_due_);
      next_due_ += period_;
    }
    source_.set_status(index, EventStatus::Sent);
    due.push_back(outgoing(std::move(line), index, due_ns));
  }
}

client::ProducerClient::Outgoing ProducerConnection::outgoing(std::string line, std::uint64_t index, std::int64_t due_ns) {
  if (line.empty()) line = std::string(source_.file_line(index));
  client::ProducerClient::WrittenCallback written;
  if (config_.on_written)
    written = [this, index, due_ns](std::chrono::steady_clock::time_point t) { config_.on_written(index, due_ns, ns_of(t)); };
  return {std::move(line), [this, index, due_ns](const client::LineOutcome& o) { settle(index, due_ns, o); },
          std::move(written)};
}

// One hand-over to the client: its I/O thread wakes once and writes the lines together.
void ProducerConnection::hand_over(std::vector<client::ProducerClient::Outgoing>& due) {
  if (stats_.first_send_ns.load(std::memory_order_relaxed) == 0) {
    std::int64_t unset = 0;
    stats_.first_send_ns.compare_exchange_strong(unset, steady_ns());
  }
  taken_.fetch_add(due.size(), std::memory_order_relaxed);
  client_->send_all(std::move(due));
  due = {};
}

void ProducerConnection::settle(std::uint64_t index, std::int64_t due_ns, const client::LineOutcome& o) {
  switch (o.status) {
    case client::LineOutcome::Status::Acked: {
      const std::int64_t at = ns_of(o.resolved);
      const auto latency = static_cast<std::uint64_t>(std::max<std::int64_t>(0, at - ns_of(o.first_written)));
      stats_.latency.record(latency);
      stats_.latency_from_due.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, at - due_ns)));
      stats_.interval.record(latency);
      stats_.acked.fetch_add(1, std::memory_order_relaxed);
      atomic_max(stats_.last_ack_ns, at);
      source_.set_status(index, EventStatus::Acked);
      remember_acked(index);
      break;
    }
    case client::LineOutcome::Status::Rejected:
      stats_.rejected.fetch_add(1, std::memory_order_relaxed);
      stats_.count_error(o.reason);
      source_.set_status(index, EventStatus::Rejected);
      break;
    case client::LineOutcome::Status::Unacknowledged:
      stats_.abandoned.fetch_add(1, std::memory_order_relaxed);
      if (!gave_up_.exchange(true)) stats_.gave_up.fetch_add(1);
      break;
  }
  settled_.fetch_add(1, std::memory_order_relaxed);
}

void ProducerConnection::remember_acked(std::uint64_t index) {
  if (recent_.size() < kRecent) {
    recent_.push_back(index);
  } else {
    recent_[recent_next_] = index;
    recent_next_ = (recent_next_ + 1) % kRecent;
  }
}

}  // namespace pm::loadgen

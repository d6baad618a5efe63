#include "daemon/replay_progress.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace pm::ctl {

namespace {

double fraction_done(const ReplayStats& s) {
  return s.total_bytes == 0 ? 1.0 : std::min(1.0, static_cast<double>(s.bytes_done) / static_cast<double>(s.total_bytes));
}

double events_per_second(const ReplayStats& s) { return s.seconds > 0 ? static_cast<double>(s.read) / s.seconds : 0.0; }

// Seconds left at the rate so far, from the share of the sources' bytes read; negative: unknown.
double seconds_left(const ReplayStats& s) {
  const double done = fraction_done(s);
  if (done >= 1.0) return 0.0;
  return done > 0.001 && s.seconds > 0.5 ? s.seconds * (1.0 - done) / done : -1.0;
}

std::string bar(double fraction, int width) {
  const int full = static_cast<int>(std::lround(fraction * width));
  return std::string(static_cast<std::size_t>(full), '#') + std::string(static_cast<std::size_t>(width - full), '-');
}

}  // namespace

std::string format_duration(double seconds) {
  const long total = std::lround(std::max(0.0, seconds));
  if (total >= 3600) return fmt::format("{}:{:02}:{:02}", total / 3600, total / 60 % 60, total % 60);
  return fmt::format("{}:{:02}", total / 60, total % 60);
}

void ReplayProgress::update(const ReplayStats& s) {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_ < (terminal_ ? std::chrono::milliseconds(200) : std::chrono::milliseconds(2000))) return;
  last_ = now;
  const double left = seconds_left(s);
  const std::string eta = left < 0 ? "--:--" : format_duration(left);
  if (terminal_) {
    out_ << fmt::format("\r[{}] {:3.0f}%  {} events  {:.0f} events/s  {} left   ", bar(fraction_done(s), 30),
                        100 * fraction_done(s), s.read, events_per_second(s), eta)
         << std::flush;
    drawn_ = true;
  } else {
    out_ << fmt::format("replay: {:.0f}% of the sources read, {} events read, {} applied, {:.0f} events/s, {} left\n",
                        100 * fraction_done(s), s.read, s.applied, events_per_second(s), eta)
         << std::flush;
  }
}

void ReplayProgress::finish(const ReplayStats& s) {
  last_ = {};
  update(s);
  if (terminal_ && drawn_) out_ << "\n" << std::flush;
}

}  // namespace pm::ctl

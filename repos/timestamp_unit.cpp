#include "repos/timestamp_unit.h"

#include <limits>
#include <stdexcept>
#include <string>

#include "repos/util/clock.h"

namespace pm {

std::optional<TimestampUnit> parse_timestamp_unit(std::string_view text) {
  if (text == "ms" || text == "milliseconds") return TimestampUnit::Milliseconds;
  if (text == "s" || text == "seconds") return TimestampUnit::Seconds;
  return std::nullopt;
}

std::string_view to_string(TimestampUnit unit) {
  return unit == TimestampUnit::Milliseconds ? "ms" : "s";
}

namespace {

// The unit a positive epoch value of this size most likely has.
std::string_view likely_unit(std::int64_t epoch) {
  if (epoch >= kNanosecondsThreshold) return "nanoseconds";
  if (epoch >= kMicrosecondsThreshold) return "microseconds";
  return unit_by_size(epoch) == TimestampUnit::Milliseconds ? "milliseconds" : "seconds";
}

}  // namespace

void require_timestamp_unit(std::int64_t epoch, TimestampUnit unit, std::string_view field,
                            std::string_view unit_source) {
  const std::string what = std::string(field) + " " + std::to_string(epoch);
  if (epoch <= 0) throw TimestampUnitError(what + " must be > 0 (epoch " + std::string(to_string(unit)) + ")");
  if (!fits_timestamp_unit(epoch, unit))
    throw TimestampUnitError(what + " looks like epoch " + std::string(likely_unit(epoch)) + " but " +
                             std::string(unit_source) + " is " +
                             (unit == TimestampUnit::Milliseconds ? "milliseconds (ms)" : "seconds (s)"));
}

std::int64_t future_bound(std::int64_t now_epoch_ms, TimestampUnit unit) {
  std::int64_t newest_ms = 0;
  if (__builtin_add_overflow(now_epoch_ms, kMaxFutureMs, &newest_ms)) newest_ms = std::numeric_limits<std::int64_t>::max();
  if (unit == TimestampUnit::Milliseconds) return newest_ms;
  // Round down: second s is let through only if all of it, s * 1000 on, is within the bound.
  return newest_ms >= 0 ? newest_ms / 1000 : -((-newest_ms + 999) / 1000);
}

std::int64_t newest_accepted(FutureBound bound, TimestampUnit unit) {
  return bound == FutureBound::CheckedOnArrival ? std::numeric_limits<std::int64_t>::max() : future_bound(now_epoch_ms(), unit);
}

void require_timestamp(std::int64_t epoch, TimestampUnit unit, std::int64_t newest, std::string_view field,
                       std::string_view unit_source) {
  if (acceptable_timestamp(epoch, unit, newest)) return;
  require_timestamp_unit(epoch, unit, field, unit_source);
  throw TimestampUnitError(std::string(field) + " " + std::to_string(epoch) + " is more than " +
                           std::to_string(kMaxFutureMs / 3'600'000) + " h ahead of now: the newest accepted is " +
                           std::to_string(newest) + " (epoch " + std::string(to_string(unit)) + ")");
}

std::int64_t from_epoch_ms(std::int64_t epoch_ms, TimestampUnit unit) {
  return unit == TimestampUnit::Milliseconds ? epoch_ms : epoch_ms / 1000;
}

std::int64_t staleness_cutoff(std::int64_t now_epoch_ms, std::int64_t max_age_seconds,
                              TimestampUnit unit) {
  std::int64_t age_ms = 0;
  std::int64_t oldest_ms = 0;
  if (__builtin_mul_overflow(max_age_seconds, 1000, &age_ms) || __builtin_sub_overflow(now_epoch_ms, age_ms, &oldest_ms))
    return max_age_seconds > 0 ? std::numeric_limits<std::int64_t>::min() : std::numeric_limits<std::int64_t>::max();
  if (unit == TimestampUnit::Milliseconds) return oldest_ms;
  // Round up: a trade at whole second s is as old as its first millisecond, so it is in range
  // only if s * 1000 >= oldest_ms. Truncating would let a trade up to 999 ms too old through.
  return oldest_ms >= 0 ? oldest_ms / 1000 + (oldest_ms % 1000 != 0) : oldest_ms / 1000;
}

}  // namespace pm

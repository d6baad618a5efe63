#pragma once
// The unit of `polymarket_trades.timestamp` (and so of `trade_watermarks.last_timestamp`). The
// production writer stores epoch milliseconds; the original library assumed seconds (D10, the
// G1 "Belichick" bug). One setting, shared by the daemon and the library, declares it; every
// writer converts into it and every reader computes its cut-offs in it.
// The size rule (kMillisecondsThreshold) is the one rule that tells the units apart, shared by the
// daemon's parsers (ingest/server/field_rules) and the library's writers (require_timestamp_unit).
// The writers also refuse values of microsecond or nanosecond size (kMicrosecondsThreshold), which
// the daemon refuses as far in the future (field_rules check_not_far_future), and, through the same
// helper (require_timestamp), any value more than kMaxFutureMs after now: the daemon's rule for an
// event time, applied against the clock when the library writes.
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string_view>

#include "repos/pg_errors.h"

namespace pm {

enum class TimestampUnit { Milliseconds, Seconds };

// Epoch values at or above this look like milliseconds; below it, like seconds (year 5138 vs 1973).
inline constexpr std::int64_t kMillisecondsThreshold = 100'000'000'000;

// Epoch values at or above this are no milliseconds (the year 5138) but microseconds or, from
// kNanosecondsThreshold, nanoseconds: stored as milliseconds they would be "recent" for ever (G1).
inline constexpr std::int64_t kMicrosecondsThreshold = 100'000'000'000'000;
inline constexpr std::int64_t kNanosecondsThreshold = 100'000'000'000'000'000;

// No clock is a day wrong: an event time more than this after its arrival is refused by the daemon
// (field_rules check_not_far_future), a timestamp more than this after now by every writer of the
// library (require_timestamp), and G1 readers never return one (TradeRepository::get_recent). One
// such value as a watermark would make every later trade or trigger look processed already.
inline constexpr std::int64_t kMaxFutureMs = 24LL * 3600 * 1000;

// The unit whose size `epoch` has (of the two a table may hold: see fits_timestamp_unit).
constexpr TimestampUnit unit_by_size(std::int64_t epoch) {
  return epoch >= kMillisecondsThreshold ? TimestampUnit::Milliseconds : TimestampUnit::Seconds;
}

// True when `epoch` is > 0, of `unit`'s size and below kMicrosecondsThreshold: what
// require_timestamp_unit lets through.
constexpr bool fits_timestamp_unit(std::int64_t epoch, TimestampUnit unit) {
  return epoch > 0 && epoch < kMicrosecondsThreshold && unit_by_size(epoch) == unit;
}

// A timestamp a writer refuses: its size does not fit the unit (require_timestamp_unit), or it is
// more than kMaxFutureMs ahead (require_timestamp). A RefusedValueError (pg_errors.h), so a data
// error (classify_exception: PgErrorKind::Data): the ingest writer dead-letters the one event.
class TimestampUnitError : public RefusedValueError {
 public:
  using RefusedValueError::RefusedValueError;
};

// Throws TimestampUnitError, naming `field`, the value and `unit`, unless fits_timestamp_unit: a
// seconds value in a milliseconds table is never "recent", a milliseconds value in a seconds table
// always is, and so is a microsecond or nanosecond value in either (G1); the message names the
// unit the value looks like, and `unit_source` where the table's unit comes from ("<unit_source>
// is milliseconds (ms)").
inline constexpr std::string_view kTradeUnitSource = "the configured trade_timestamp_unit";
// Trigger times (trigger_timestamp of triggers, candidates and paper trades, and
// trigger_watermarks.last_timestamp) are epoch milliseconds whatever unit the trades are in
// (schema.md): their checks name this as the unit's source.
inline constexpr std::string_view kTriggerUnitSource = "the unit of trigger timestamps";
// score_history.scored_at and trade_watchlist's last_scored_at and created_at are epoch seconds
// whatever unit the trades are in (schema.md): their checks name this as the unit's source.
inline constexpr std::string_view kScoringUnitSource = "the unit of score_history.scored_at and trade_watchlist.*_at";
void require_timestamp_unit(std::int64_t epoch, TimestampUnit unit, std::string_view field,
                            std::string_view unit_source = kTradeUnitSource);

// The newest timestamp, in `unit`, that is at most kMaxFutureMs after `now_epoch_ms` (rounded
// down in seconds, so a value too far ahead is never let through; saturates instead of wrapping).
std::int64_t future_bound(std::int64_t now_epoch_ms, TimestampUnit unit);

// Which clock the writers' 24-h bound counts from. FromNow: every caller of the library.
// CheckedOnArrival: the ingest writer and `pm-ingestctl replay`, whose events the daemon checked
// against their own arrival when they came in (ingest/server/field_rules), so that the rows they
// write depend on the events only, never on the applying host's clock (stepped back, or a replay
// on a host whose clock is behind): only the unit's size rule applies then.
enum class FutureBound { FromNow, CheckedOnArrival };

// The newest timestamp a writer accepts in `unit`: future_bound(now) or, CheckedOnArrival, no bound.
std::int64_t newest_accepted(FutureBound bound, TimestampUnit unit);

// What require_timestamp lets through: fits_timestamp_unit and at most `newest` (future_bound).
constexpr bool acceptable_timestamp(std::int64_t epoch, TimestampUnit unit, std::int64_t newest) {
  return fits_timestamp_unit(epoch, unit) && epoch <= newest;
}

// The writers' one check (trades, trade watermarks, triggers, trigger watermarks), before any SQL:
// require_timestamp_unit, then TimestampUnitError naming `field`, the value and `newest` unless
// epoch <= newest. `newest` is future_bound(now, unit), computed once per call.
void require_timestamp(std::int64_t epoch, TimestampUnit unit, std::int64_t newest, std::string_view field,
                       std::string_view unit_source = kTradeUnitSource);

// "ms" or "s" (also "milliseconds"/"seconds"); nullopt for anything else.
std::optional<TimestampUnit> parse_timestamp_unit(std::string_view text);
std::string_view to_string(TimestampUnit unit);

// Converts an epoch in milliseconds into the unit (seconds truncate toward zero).
std::int64_t from_epoch_ms(std::int64_t epoch_ms, TimestampUnit unit);

// The oldest timestamp, in `unit`, that is still at most `max_age_seconds` old at `now_epoch_ms`
// (rounded up in seconds, so a value that is too old is never let through). Ages beyond the
// epoch range saturate: the cut-off is then the oldest value representable, not a wrapped one.
std::int64_t staleness_cutoff(std::int64_t now_epoch_ms, std::int64_t max_age_seconds,
                              TimestampUnit unit);

}  // namespace pm

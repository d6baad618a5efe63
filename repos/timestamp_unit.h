#pragma once
// The unit of `polymarket_trades.timestamp` (and so of `trade_watermarks.last_timestamp`). The
// production writer stores epoch milliseconds; the original library assumed seconds (D10, the
// G1 "Belichick" bug). One setting, shared by the daemon and the library, declares it; every
// writer converts into it and every reader computes its cut-offs in it.
#include <cstdint>
#include <optional>
#include <string_view>

namespace pm {

enum class TimestampUnit { Milliseconds, Seconds };

// "ms" or "s" (also "milliseconds"/"seconds"); nullopt for anything else.
std::optional<TimestampUnit> parse_timestamp_unit(std::string_view text);
std::string_view to_string(TimestampUnit unit);

// Converts an epoch in milliseconds into the unit (seconds truncate toward zero).
std::int64_t from_epoch_ms(std::int64_t epoch_ms, TimestampUnit unit);

// The oldest timestamp, in `unit`, that is still at most `max_age_seconds` old at `now_epoch_ms`
// (rounded up in seconds, so a value that is too old is never let through).
std::int64_t staleness_cutoff(std::int64_t now_epoch_ms, std::int64_t max_age_seconds,
                              TimestampUnit unit);

}  // namespace pm

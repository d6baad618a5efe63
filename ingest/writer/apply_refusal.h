#pragma once
// Why events must not be applied to a database at all, checked before anything is applied: the
// daemon's writer at every (re)connect and pm-ingestctl replay share it. G2's unique index missing
// (repos/g2_index.h: a second token's first trigger would be recorded too), or trade watermarks of
// the other unit than the one events are written in (repos/trade_unit_check.h: rows would read as
// 1970 or the far future). Runs two short transactions on `db`; any thread that owns `db`'s use.
#include <optional>
#include <string>

#include "repos/database.h"
#include "repos/timestamp_unit.h"

namespace pm {

// The refusal, naming what is wrong and the fix; nullopt when events may be applied. Throws what
// the queries throw.
std::optional<std::string> apply_refusal(Database& db, TimestampUnit trade_timestamp_unit);

}  // namespace pm

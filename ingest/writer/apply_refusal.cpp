#include "ingest/writer/apply_refusal.h"

#include "repos/g2_index.h"
#include "repos/trade_unit_check.h"

namespace pm {

std::optional<std::string> apply_refusal(Database& db, TimestampUnit trade_timestamp_unit) {
  const G2IndexCheck g2 = db.transaction([](Transaction& tx) { return check_g2_index(tx); });
  if (g2.state == G2IndexState::Missing) return g2.problem + "; refusing to apply events until it is fixed";
  const auto unit_problem = db.transaction([&](Transaction& tx) {
    return trade_watermarks_unit_mismatch(tx, trade_timestamp_unit, "--trade-timestamp-unit");
  });
  if (unit_problem) return *unit_problem + "; refusing to apply events in the wrong unit";
  return std::nullopt;
}

}  // namespace pm

#include "repos/g2_index.h"

#include <pqxx/pqxx>

namespace pm {

namespace {

// Usable unique indexes on exactly (condition_id, threshold) of the table.
const char* const kUsableIndexes = R"SQL(
SELECT count(*) FROM pg_index i
WHERE i.indrelid = to_regclass($1)
  AND i.indisunique AND i.indisvalid AND i.indisready AND i.indimmediate
  AND i.indpred IS NULL AND i.indexprs IS NULL
  AND i.indnatts = 2 AND i.indnkeyatts = 2
  AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text)
         FROM unnest(i.indkey::int2[]) AS k(attnum)
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum)
      = ARRAY['condition_id', 'threshold'])SQL";

// Every index of the table that names condition_id or is the seed's index, as its definition and
// flags, for the message.
const char* const kCandidates = R"SQL(
SELECT pg_get_indexdef(i.indexrelid)
       || CASE WHEN i.indisvalid THEN '' ELSE ' (INVALID)' END
       || CASE WHEN i.indimmediate THEN '' ELSE ' (DEFERRABLE)' END
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = to_regclass($1)
  AND (c.relname = 'idx_triggers_condition_threshold_unique'
       OR pg_get_indexdef(i.indexrelid) LIKE '%condition_id%threshold%'
       OR pg_get_indexdef(i.indexrelid) LIKE '%threshold%condition_id%')
ORDER BY c.relname)SQL";

}  // namespace

G2IndexCheck check_g2_index(pqxx::transaction_base& tx) {
  if (tx.exec_params1("SELECT to_regclass($1) IS NULL", kTriggersTable)[0].as<bool>())
    return {G2IndexState::TableMissing, ""};
  if (tx.exec_params1(kUsableIndexes, kTriggersTable)[0].as<long long>() > 0) return {G2IndexState::Present, ""};
  std::string found;
  for (const auto& row : tx.exec_params(kCandidates, kTriggersTable))
    found += (found.empty() ? "" : "; ") + row[0].as<std::string>();
  return {G2IndexState::Missing,
          std::string(kTriggersTable) +
              " has no valid unique index on exactly (condition_id, threshold), so G2 (one first trigger per "
              "condition and threshold) would silently fail; " +
              (found.empty() ? std::string("no index on those columns exists")
                             : "found instead: " + found) +
              ". Fix: DROP INDEX IF EXISTS idx_triggers_condition_threshold_unique; CREATE UNIQUE INDEX "
              "idx_triggers_condition_threshold_unique ON " + kTriggersTable + " (condition_id, threshold)"};
}

void require_g2_index(pqxx::transaction_base& tx) {
  const G2IndexCheck check = check_g2_index(tx);
  if (check.state == G2IndexState::Missing) throw SchemaError(check.problem);
}

}  // namespace pm

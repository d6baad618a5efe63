#pragma once
// The index G2 stands on. TriggerRepository::record_first* claim a (condition_id, threshold) with
// INSERT .. ON CONFLICT DO NOTHING, which is "first trigger wins" only if a unique index on exactly
// those two columns exists. seed/01_schema.sql creates it with CREATE UNIQUE INDEX IF NOT EXISTS,
// which skips by name: a non-unique (or partial, or invalid) index of the same name would leave G2
// silently broken. check_g2_index looks in pg_index for a usable one: unique, valid, immediate (not
// deferrable: ON CONFLICT cannot use those), no predicate, no expressions, key columns exactly
// {condition_id, threshold} in either order and nothing else (a unique index or constraint alike).
// Callers: Migrator::migrate (after applying), the ingest writer at every (re)connect, which
// stops the daemon when it is missing, and ReplayRunner before it applies anything. Stateless; runs on the caller's transaction.
#include <stdexcept>
#include <string>

#include <pqxx/transaction_base>

namespace pm {

inline constexpr const char* kTriggersTable = "polymarket_first_triggers";

enum class G2IndexState {
  Present,       // a usable unique index exists
  TableMissing,  // polymarket_first_triggers does not exist (not migrated yet)
  Missing,       // the table exists without a usable index: `problem` says what is there instead
};

struct G2IndexCheck {
  G2IndexState state = G2IndexState::Missing;
  std::string problem;  // empty unless Missing: what is wrong and how to fix it
};

G2IndexCheck check_g2_index(pqxx::transaction_base& tx);

// The schema cannot keep a promise the library relies on (check_g2_index found no usable index).
class SchemaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws SchemaError with the problem when the table exists without a usable index.
void require_g2_index(pqxx::transaction_base& tx);

}  // namespace pm

#pragma once
// Transaction-scoped PostgreSQL advisory locks on a two-part key (class, number): held until the
// transaction commits or rolls back, and seen by the server's deadlock detector like any row lock.
// Used by the ingest writer's lanes to make a batch wait for the one before it inside PostgreSQL.
// Any thread, on its own transaction.
#include <cstdint>
#include <string>
#include <string_view>

#include <pqxx/transaction_base>

namespace pm {

struct AdvisoryKey {
  std::int32_t lock_class = 0;
  std::int32_t number = 0;
};

// The key (lock_class, seq modulo 2^31): sequence numbers far apart never meet in one wait.
AdvisoryKey advisory_key(std::int32_t lock_class, std::uint64_t seq);

// pg_advisory_xact_lock: blocks until `key` is held exclusively by `tx`. `also_select`, when not
// empty: SQL expressions the same statement selects first (one round trip for both; e.g. a
// set_config of this transaction).
void lock_exclusive(pqxx::transaction_base& tx, AdvisoryKey key, std::string_view also_select = {});
// That statement's text, for a caller that sends it with others (OwedStatements).
std::string lock_exclusive_sql(AdvisoryKey key, std::string_view also_select = {});
// pg_advisory_xact_lock_shared: blocks while another transaction holds `key` exclusively.
void lock_shared(pqxx::transaction_base& tx, AdvisoryKey key);
// That statement's text, for a caller that sends it with others (OwedStatements).
std::string lock_shared_sql(AdvisoryKey key);

}  // namespace pm

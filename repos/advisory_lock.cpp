#include "repos/advisory_lock.h"

#include <string>

namespace pm {

namespace {

std::string lock_sql(const char* function, AdvisoryKey key, std::string_view also_select = {}) {
  std::string sql = "SELECT ";
  if (!also_select.empty()) sql.append(also_select).append(", ");
  return sql + function + "(" + std::to_string(key.lock_class) + ", " + std::to_string(key.number) + ")";
}

}  // namespace

AdvisoryKey advisory_key(std::int32_t lock_class, std::uint64_t seq) {
  return AdvisoryKey{lock_class, static_cast<std::int32_t>(seq & 0x7fffffff)};
}

std::string lock_exclusive_sql(AdvisoryKey key, std::string_view also_select) {
  return lock_sql("pg_advisory_xact_lock", key, also_select);
}

void lock_exclusive(pqxx::transaction_base& tx, AdvisoryKey key, std::string_view also_select) {
  tx.exec1(lock_exclusive_sql(key, also_select));
}

std::string lock_shared_sql(AdvisoryKey key) { return lock_sql("pg_advisory_xact_lock_shared", key); }

void lock_shared(pqxx::transaction_base& tx, AdvisoryKey key) { tx.exec1(lock_shared_sql(key)); }

}  // namespace pm

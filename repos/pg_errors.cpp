#include "repos/pg_errors.h"

#include <pqxx/except>

namespace pm {

PgErrorKind classify_sqlstate(const std::string& sqlstate) {
  if (sqlstate.size() != 5) return PgErrorKind::Other;
  const std::string cls = sqlstate.substr(0, 2);
  if (cls == "08") return PgErrorKind::Connection;
  if (sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03")
    return PgErrorKind::Connection;
  if (sqlstate == "57014") return PgErrorKind::Timeout;
  // Class 40 (transaction rollback): the server rolled the whole transaction back, so running it
  // again is safe and may succeed.
  if (cls == "40" || sqlstate == "55P03" || cls == "53") return PgErrorKind::Transient;
  if (cls == "22" || cls == "23" || cls == "54") return PgErrorKind::Data;
  return PgErrorKind::Other;
}

std::string sqlstate_of(const std::exception& error) {
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&error); sql != nullptr) return sql->sqlstate();
  // libpqxx 6.4 (result.cxx ThrowSQLError) throws these four for class 40, without the SQLSTATE.
  if (dynamic_cast<const pqxx::deadlock_detected*>(&error) != nullptr) return "40P01";
  if (dynamic_cast<const pqxx::serialization_failure*>(&error) != nullptr) return "40001";
  if (dynamic_cast<const pqxx::statement_completion_unknown*>(&error) != nullptr) return "40003";
  if (dynamic_cast<const pqxx::transaction_rollback*>(&error) != nullptr) return "40000";
  return {};
}

PgErrorKind classify_exception(const std::exception& error) {
  if (dynamic_cast<const pqxx::in_doubt_error*>(&error) != nullptr) return PgErrorKind::InDoubt;
  if (dynamic_cast<const pqxx::broken_connection*>(&error) != nullptr) return PgErrorKind::Connection;
  if (dynamic_cast<const ConnectionError*>(&error) != nullptr) return PgErrorKind::Connection;
  if (dynamic_cast<const PoolTimeout*>(&error) != nullptr) return PgErrorKind::Timeout;
  if (dynamic_cast<const RefusedValueError*>(&error) != nullptr) return PgErrorKind::Data;
  if (const std::string sqlstate = sqlstate_of(error); !sqlstate.empty()) return classify_sqlstate(sqlstate);
  return PgErrorKind::Other;
}

const char* to_string(PgErrorKind kind) {
  switch (kind) {
    case PgErrorKind::Connection: return "connection";
    case PgErrorKind::Transient: return "transient";
    case PgErrorKind::Data: return "data";
    case PgErrorKind::InDoubt: return "in_doubt";
    case PgErrorKind::Timeout: return "timeout";
    case PgErrorKind::Other: return "other";
  }
  return "other";
}

}  // namespace pm

#include "repos/raw_connection.h"

#include <libpq-fe.h>

#include <pqxx/except>
#include <pqxx/largeobject>

namespace pm {

namespace {

// libpqxx keeps a transaction's PGconn to itself; pqxx::largeobject hands it to subclasses.
struct ConnectionOf : private pqxx::largeobject {
  static pg_conn* of(const pqxx::dbtransaction& tx) { return pqxx::largeobject::raw_connection(tx); }
};

}  // namespace

pg_conn* raw_connection(const pqxx::dbtransaction& tx) { return ConnectionOf::of(tx); }

void throw_sql_error(pg_conn* conn, const std::string& message, const std::string& query, const std::string& sqlstate) {
  if (PQstatus(conn) == CONNECTION_BAD || sqlstate.empty()) throw pqxx::broken_connection(message);
  const char* state = sqlstate.c_str();
  if (sqlstate == "23505") throw pqxx::unique_violation(message, query, state);
  if (sqlstate == "23503") throw pqxx::foreign_key_violation(message, query, state);
  if (sqlstate == "23502") throw pqxx::not_null_violation(message, query, state);
  if (sqlstate == "23514") throw pqxx::check_violation(message, query, state);
  if (sqlstate.rfind("23", 0) == 0) throw pqxx::integrity_constraint_violation(message, query, state);
  if (sqlstate.rfind("22", 0) == 0) throw pqxx::data_exception(message, query, state);
  throw pqxx::sql_error(message, query, state);
}

void require_transaction_not_failed(const pqxx::dbtransaction& tx) {
  pg_conn* conn = raw_connection(tx);
  if (PQtransactionStatus(conn) != PQTRANS_INERROR) return;
  std::string caught = PQerrorMessage(conn);
  caught = caught.substr(0, caught.find('\n'));
  std::string message =
      "not committed: the transaction had already failed inside the body (a statement's error was caught and the "
      "body returned normally), so the server would have rolled it back at COMMIT and nothing of it was stored";
  if (!caught.empty()) message += " (the last error on the connection: " + caught + ")";
  throw pqxx::sql_error(message, "COMMIT", "25P02");
}

}  // namespace pm

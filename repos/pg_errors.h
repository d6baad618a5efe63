#pragma once
// Classification of PostgreSQL failures, shared by the pool (what to retry) and the ingest writer
// (retry, split a batch, or stop). Based on SQLSTATE classes, never on message text.
#include <exception>
#include <stdexcept>
#include <string>

namespace pm {

// The server could not be reached after every attempt (Database). The message names the redacted
// URL. Classified as Connection.
class ConnectionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Every pooled connection stayed busy for `acquire_timeout` (Database). Classified as Timeout.
class PoolTimeout : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A value a repository of this library refuses before sending any SQL, as the server would refuse
// it for a value: an empty key column, a threshold that is not a finite number, a timestamp of the
// wrong unit (TimestampUnitError). The same data fails again, so it is classified as Data: the
// ingest writer isolates the one event and dead-letters it, as it does for the server's own data
// errors, instead of retrying its batch for ever. Also a std::invalid_argument; the message names
// what was wrong.
class RefusedValueError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

enum class PgErrorKind {
  Connection,  // connection lost/refused, server shutting down or not accepting (08xxx, 57P0x)
  Transient,   // the server rolled the transaction back (class 40: serialization failure 40001, deadlock
               // 40P01, ...), lock timeout (55P03), out of resources (53xxx)
  Data,        // a value the server rejects: data exception, integrity violation (22xxx, 23xxx, 54xxx)
  InDoubt,     // connection lost during COMMIT: the outcome is unknown
  Timeout,     // statement timeout or cancel (57014)
  Other,       // anything else (schema missing, permission, syntax, ...)
};

// Every kind, for whoever must name them all (the writer's metrics pre-register one series each).
inline constexpr PgErrorKind kPgErrorKinds[] = {PgErrorKind::Connection, PgErrorKind::Transient, PgErrorKind::Data,
                                                PgErrorKind::InDoubt,    PgErrorKind::Timeout,   PgErrorKind::Other};

PgErrorKind classify_sqlstate(const std::string& sqlstate);

// The SQLSTATE an exception stands for: a pqxx::sql_error's own, or, for libpqxx 6.4's class-40
// exceptions, which derive from pqxx::failure, not sql_error, and carry no SQLSTATE, the code of
// their type: pqxx::serialization_failure 40001, deadlock_detected 40P01,
// statement_completion_unknown 40003, any other transaction_rollback 40000. Empty for anything else
// (a lost connection, the pool's own errors, a RefusedValueError). The one place the SQLSTATE of an
// exception is read (classify_exception, failure_of).
std::string sqlstate_of(const std::exception& error);

// Classifies an exception thrown by libpqxx, the pool or a repository by classify_sqlstate of its
// sqlstate_of (a deadlock or serialization failure inside a transaction: Transient), after the ones
// without a SQLSTATE: a lost connection (Connection), a COMMIT in doubt (InDoubt), ConnectionError,
// PoolTimeout (Timeout), a RefusedValueError such as a TimestampUnitError (Data); anything else:
// Other.
PgErrorKind classify_exception(const std::exception& error);

const char* to_string(PgErrorKind kind);

}  // namespace pm

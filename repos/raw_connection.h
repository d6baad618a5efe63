#pragma once
// The libpq connection under a libpqxx transaction, for what libpqxx 6.4 cannot do itself (binary
// COPY; the result of each statement of a query holding several), and the libpqxx exception a
// statement failing with a given SQLSTATE would have thrown, so callers classify such failures as
// any other. Whoever uses the connection must leave it with no command in progress.
#include <string>

#include <pqxx/dbtransaction>

struct pg_conn;

namespace pm {

pg_conn* raw_connection(const pqxx::dbtransaction& tx);

// A statement on `conn` failed: throws pqxx::broken_connection when the connection is gone or the
// failure has no SQLSTATE, else pqxx::unique_violation, foreign_key_violation,
// not_null_violation, check_violation, integrity_constraint_violation (other class 23),
// data_exception (class 22) or sql_error.
[[noreturn]] void throw_sql_error(pg_conn* conn, const std::string& message, const std::string& query,
                                  const std::string& sqlstate);

// Throws pqxx::sql_error with SQLSTATE 25P02 (in_failed_sql_transaction) when the server's session
// of `tx` is inside a failed transaction block (PQTRANS_INERROR): a statement failed and whoever ran
// it caught the error and carried on. COMMIT would then end the transaction with ROLLBACK and no
// error, and libpqxx 6.4's commit() would return as if it had committed. The message (one line)
// says so and names the last error libpq recorded on the connection, normally the one caught.
// Nothing is sent. Called by run_once (database.h) before every COMMIT.
void require_transaction_not_failed(const pqxx::dbtransaction& tx);

}  // namespace pm

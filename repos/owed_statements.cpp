#include "repos/owed_statements.h"

#include <cstdlib>
#include <optional>

#include <libpq-fe.h>

#include <pqxx/except>

#include "repos/raw_connection.h"

namespace pm {

void OwedStatements::add(std::string sql, std::function<void()> after_run) {
  sql_ += sql;
  sql_ += ";\n";
  ++count_;
  if (after_run) after_run_.push_back(std::move(after_run));
}

void OwedStatements::ran() {
  std::vector<std::function<void()>> done;
  done.swap(after_run_);
  sql_.clear();
  count_ = 0;
  for (auto& f : done) f();
}

void OwedStatements::flush(pqxx::transaction_base& tx) {
  if (empty()) return;
  tx.exec(sql_);
  ran();
}

namespace {

struct Failure {
  std::string message;
  std::string sqlstate;
};

// Reads every result of the query in flight (one per statement, then libpq's end marker), keeping
// the affected rows of the successful ones and the first failure.
std::vector<std::uint64_t> read_results(pg_conn* conn, std::optional<Failure>& failure) {
  std::vector<std::uint64_t> affected;
  while (PGresult* res = PQgetResult(conn)) {
    const ExecStatusType status = PQresultStatus(res);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
      affected.push_back(std::strtoull(PQcmdTuples(res), nullptr, 10));
    } else if (!failure) {
      const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
      failure = Failure{PQresultErrorMessage(res), state != nullptr ? state : ""};
    }
    PQclear(res);
    // A COPY among the statements is not ours to feed: the connection cannot be used further.
    if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH) {
      if (!failure) failure = Failure{"exec_together: a COPY statement cannot run here", ""};
      break;
    }
  }
  return affected;
}

}  // namespace

std::vector<std::uint64_t> exec_together(pqxx::dbtransaction& tx, OwedStatements& owed,
                                         const std::vector<std::string>& statements) {
  std::string query = owed.prefix();
  for (const auto& s : statements) query.append(s).append(";\n");
  if (query.empty()) return {};
  pg_conn* conn = raw_connection(tx);
  if (PQsendQuery(conn, query.c_str()) != 1) throw pqxx::broken_connection(PQerrorMessage(conn));
  std::optional<Failure> failure;
  std::vector<std::uint64_t> affected = read_results(conn, failure);
  if (failure) throw_sql_error(conn, failure->message, query, failure->sqlstate);
  if (affected.size() != owed.size() + statements.size())
    throw pqxx::internal_error("exec_together: " + std::to_string(affected.size()) + " results for " +
                               std::to_string(owed.size() + statements.size()) + " statements");
  owed.ran();
  return std::vector<std::uint64_t>(affected.begin() + static_cast<std::ptrdiff_t>(affected.size() - statements.size()),
                                    affected.end());
}

}  // namespace pm

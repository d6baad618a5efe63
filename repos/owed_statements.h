#pragma once
// OwedStatements: statements a transaction must run before its next one (plain SQL, no
// parameters, one statement each), held back to travel in front of that next statement in the
// same simple query. Each one so carried spares a round trip: a wake-up of the server and of the
// caller, ~0.15-0.25 ms on the 2-core machines here, which every batch pays however small.
//
// Contract:
// - add(sql, after_run) owes `sql`; `after_run` (optional) is called once it has run, e.g. to say
//   that a lock it takes is now held.
// - A sender of simple-query SQL puts prefix() in front of its own statement and calls ran() once
//   that query returned without error: PostgreSQL ran the owed statements first, in order.
//   exec_together() and BinaryCopyIn do so.
// - flush(tx) sends what is owed on its own (one round trip), for a caller whose next statement
//   has parameters or is not the caller's to compose.
// - Nothing is sent on destruction: if the transaction ends first, what was owed never runs (an
//   owed RELEASE SAVEPOINT is implied by COMMIT; nothing else owed matters to a rollback).
// Single-threaded, like the transaction it belongs to.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <pqxx/dbtransaction>
#include <pqxx/transaction_base>

namespace pm {

class OwedStatements {
 public:
  void add(std::string sql, std::function<void()> after_run = {});
  bool empty() const { return count_ == 0; }
  std::size_t size() const { return count_; }
  // The owed statements, each ended by ";\n" (empty when nothing is owed).
  const std::string& prefix() const { return sql_; }
  // They ran: calls each after_run in order, then owes nothing.
  void ran();
  void flush(pqxx::transaction_base& tx);

 private:
  std::string sql_;
  std::size_t count_ = 0;
  std::vector<std::function<void()>> after_run_;
};

// Runs what `owed` holds and then `statements` (plain SQL, one statement each) as one simple query
// on tx's connection: one round trip for all. Returns the affected rows of each of `statements`, in
// order. The first statement to fail throws as libpqxx would (SQLSTATE kept, see raw_connection.h)
// and none after it runs; the transaction is then aborted, as after any failed statement.
std::vector<std::uint64_t> exec_together(pqxx::dbtransaction& tx, OwedStatements& owed,
                                         const std::vector<std::string>& statements);

}  // namespace pm

#pragma once
// DeferredBeginTransaction: a libpqxx transaction whose BEGIN is not sent when it is made but owed
// (OwedStatements), to travel in front of its first statement: one round trip fewer per
// transaction. libpqxx 6.4's own transactions send BEGIN alone from their constructor.
//
// Contract:
// - The creator owes kBegin ahead of everything else (owe_begin) and sends what is owed with, or
//   before, its first statement.
// - A statement sent through libpqxx's exec before that (a query not starting with the owed
//   "BEGIN;") still runs inside the transaction: a BEGIN of its own goes first (the round trip is
//   back, nothing is lost). exec_params and prepared statements bypass that check: flush what is
//   owed before them, as every caller of OwedStatements does before a statement with parameters.
// - commit() refuses (std::logic_error, nothing sent) when BEGIN never reached the server: the
//   statements then ran on their own, and committing would claim they were one transaction.
// - abort() (and the destructor without commit) sends ROLLBACK only when BEGIN reached the server.
// Single-threaded, like any libpqxx transaction; the connection must outlive it.
#include <pqxx/connection_base>
#include <pqxx/dbtransaction>

#include "repos/owed_statements.h"

namespace pm {

class DeferredBeginTransaction final : public pqxx::dbtransaction {
 public:
  // READ COMMITTED whatever the role's or database's default_transaction_isolation says: the
  // writer's batches rely on each statement seeing what committed before it (a batch's checkpoint
  // save, run once the batch before committed, must see that batch's row).
  static constexpr const char* kBegin = "BEGIN ISOLATION LEVEL READ COMMITTED";

  explicit DeferredBeginTransaction(pqxx::connection_base& c);
  ~DeferredBeginTransaction() noexcept override;

  static void owe_begin(OwedStatements& owed) { owed.add(kBegin); }

 private:
  void do_begin() override {}
  pqxx::result do_exec(const char query[]) override;
  void do_commit() override;
  void do_abort() override;
  bool begun() const;  // the server's session is inside a transaction block (or its state is unknown)
};

}  // namespace pm

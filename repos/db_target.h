#pragma once
// DbTarget: where a repository's statements run (fix for D18).
// - DbTarget(Database&): each repository call is its own transaction through
//   Database::transaction (committed on return, retried only when safe).
// - DbTarget(pqxx::transaction_base&): each call joins the caller's open transaction, so several
//   repository calls commit or roll back together. The caller owns the transaction and must keep
//   it alive while the repository is used; such a target is for the caller's thread only.
#include <pqxx/transaction_base>

#include "repos/database.h"

namespace pm {

class DbTarget {
 public:
  DbTarget(Database& db) : db_(&db) {}                       // NOLINT: implicit by design
  DbTarget(pqxx::transaction_base& tx) : tx_(&tx) {}         // NOLINT: implicit by design

  template <class Fn>
  auto run(Fn&& fn) const {
    if (tx_ != nullptr) return fn(*tx_);
    // The repositories' SQL leaves the session as it found it: no reset round trip.
    return db_->transaction([&](pqxx::work& tx) { return fn(static_cast<pqxx::transaction_base&>(tx)); }, kKeepSession);
  }

  // The Database behind this target, or nullptr for a caller's transaction.
  Database* database() const { return db_; }

 private:
  Database* db_ = nullptr;
  pqxx::transaction_base* tx_ = nullptr;
};

}  // namespace pm

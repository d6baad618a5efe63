#include "repos/deferred_begin_transaction.h"

#include <stdexcept>
#include <string_view>

#include <libpq-fe.h>

#include "repos/raw_connection.h"

namespace pm {

DeferredBeginTransaction::DeferredBeginTransaction(pqxx::connection_base& c)
    : pqxx::internal::namedclass{"DeferredBeginTransaction"}, pqxx::dbtransaction(c, "READ COMMITTED") {
  Begin();  // libpqxx's bookkeeping only: do_begin sends nothing
}

DeferredBeginTransaction::~DeferredBeginTransaction() noexcept { End(); }

bool DeferredBeginTransaction::begun() const {
  return PQtransactionStatus(raw_connection(*this)) != PQTRANS_IDLE;
}

// A query that starts with the owed BEGIN (OwedStatements' prefix) carries it itself.
pqxx::result DeferredBeginTransaction::do_exec(const char query[]) {
  const std::string_view q(query);
  const bool carries_begin = q.starts_with(kBegin) && q.substr(std::string_view(kBegin).size()).starts_with(';');
  if (!carries_begin && !begun()) direct_exec(kBegin);
  return dbtransaction::do_exec(query);
}

void DeferredBeginTransaction::do_commit() {
  if (!begun())
    throw std::logic_error("a DeferredBeginTransaction was committed without its BEGIN ever being sent: its "
                           "statements ran on their own, outside one transaction");
  direct_exec("COMMIT");
}

void DeferredBeginTransaction::do_abort() {
  if (begun()) {
    dbtransaction::do_abort();
  } else {
    reactivation_avoidance_clear();
  }
}

}  // namespace pm

#include "repos/tx_result.h"

#include <pqxx/except>

#include "repos/database_config.h"

namespace pm {

const char* to_string(TxStatus status) {
  switch (status) {
    case TxStatus::Applied: return "applied";
    case TxStatus::RolledBack: return "rolled_back";
    case TxStatus::Retry: return "retry";
    case TxStatus::DataError: return "data_error";
    case TxStatus::InDoubt: return "in_doubt";
    case TxStatus::Fatal: return "fatal";
  }
  return "fatal";
}

TxStatus status_of(PgErrorKind kind) {
  switch (kind) {
    case PgErrorKind::Connection:
    case PgErrorKind::Transient:
    case PgErrorKind::Timeout: return TxStatus::Retry;
    case PgErrorKind::Data: return TxStatus::DataError;
    case PgErrorKind::InDoubt: return TxStatus::InDoubt;
    case PgErrorKind::Other: return TxStatus::Fatal;
  }
  return TxStatus::Fatal;
}

TxFailure failure_of(const std::exception& error, bool committing) {
  TxFailure failure;
  failure.kind = classify_exception(error);
  std::string text = error.what();
  if (committing && failure.kind == PgErrorKind::Connection) {
    failure.kind = PgErrorKind::InDoubt;
    text = "connection lost during COMMIT: " + text;
    failure.exception = std::make_exception_ptr(pqxx::in_doubt_error(text));
  } else {
    failure.exception = std::current_exception();
  }
  failure.sqlstate = sqlstate_of(error);
  failure.message = redact_url(text.substr(0, text.find('\n')));
  return failure;
}

}  // namespace pm

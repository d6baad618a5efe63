#pragma once
// TxResult: the outcome of one transaction attempt, classified once, here at the repository
// boundary, so callers switch on a value instead of catching libpqxx exceptions.
//
// - Applied: the body returned a value and COMMIT succeeded; `value` holds it.
// - RolledBack: the body asked for a rollback (returned no value); nothing failed.
// - Retry: it failed and was rolled back; the same work may succeed if run again (connection lost
//   or refused, serialization failure, deadlock or any other SQLSTATE class 40, lock or statement
//   timeout, no pooled connection).
// - DataError: the server refused a value (SQLSTATE classes 22, 23, 54); the same data fails again.
// - InDoubt: the connection was lost during COMMIT; it may or may not have committed.
// - Fatal: anything else (missing table, permission, a bug): running it again as is will not help.
//   So is a body that caught a statement's error and returned a value (25P02, see run_once in
//   database.h): the server had failed the transaction and would have rolled it back at COMMIT.
// Plain values; any thread.
#include <exception>
#include <optional>
#include <string>

#include "repos/pg_errors.h"

namespace pm {

enum class TxStatus { Applied, RolledBack, Retry, DataError, InDoubt, Fatal };

const char* to_string(TxStatus status);

// Why an attempt failed. Empty for Applied and RolledBack.
struct TxFailure {
  PgErrorKind kind = PgErrorKind::Other;
  std::string sqlstate;           // the server's SQLSTATE (sqlstate_of); empty when there is none
  std::string message;            // the error's first line, any database URL in it redacted
  std::exception_ptr exception;   // the original, for callers that rethrow (Database::transaction)
};

template <class T>
struct [[nodiscard]] TxResult {
  TxStatus status = TxStatus::Fatal;
  std::optional<T> value;  // set iff status == Applied
  TxFailure failure;

  bool applied() const { return status == TxStatus::Applied; }
  bool failed() const { return status != TxStatus::Applied && status != TxStatus::RolledBack; }

  static TxResult applied_with(T v) { return TxResult{TxStatus::Applied, std::move(v), {}}; }
  static TxResult rolled_back() { return TxResult{TxStatus::RolledBack, std::nullopt, {}}; }
  static TxResult failed_with(TxStatus status, TxFailure failure) {
    return TxResult{status, std::nullopt, std::move(failure)};
  }
};

// The status a failure of this kind has (Connection, Transient, Timeout: Retry; ...).
TxStatus status_of(PgErrorKind kind);

// Classifies `error` (thrown by libpqxx, the pool, or anything else) into a failure whose status
// is status_of(kind); call it inside the catch block, so the original exception is kept.
// `committing`: the error came from COMMIT, so a lost connection leaves the outcome in doubt.
TxFailure failure_of(const std::exception& error, bool committing = false);

// The result of an attempt that failed with `failure`.
template <class T>
TxResult<T> failed_result(TxFailure failure) {
  const TxStatus status = status_of(failure.kind);
  return TxResult<T>::failed_with(status, std::move(failure));
}

// Whether `failure`'s original exception is an `E` (a caller's own kind of failure, which the
// classification above sees only as Other).
template <class E>
bool failure_is(const TxFailure& failure) {
  if (!failure.exception) return false;
  try {
    std::rethrow_exception(failure.exception);
  } catch (const E&) {
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace pm

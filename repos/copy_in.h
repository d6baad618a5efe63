#pragma once
// CopyIn: streams pre-formatted rows into `COPY table (columns) FROM STDIN` (text format) inside
// a caller's transaction. The caller formats each row with the append_* helpers (tab-separated,
// escaped), which avoids a per-field allocation. Call complete() before using the transaction
// again. Destroying an incomplete CopyIn (an exception between write_rows calls) fails the COPY
// statement, so none of its rows is stored: in autocommit nothing is committed, in a transaction
// the transaction is aborted, as after any failed statement. The transaction can be used again
// afterwards (no error is left pending in it). Single-threaded, like its transaction.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <pqxx/transaction_base>

namespace pm {

class CopyIn {
 public:
  CopyIn(pqxx::transaction_base& tx, const std::string& table, const std::vector<std::string>& columns);
  ~CopyIn();
  CopyIn(const CopyIn&) = delete;
  CopyIn& operator=(const CopyIn&) = delete;

  // One row, fields already escaped and tab-separated, without the trailing newline; or several
  // such rows separated by '\n' (fewer, larger messages to the server).
  void write_rows(const std::string& rows);
  void complete();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// COPY text-format field writers; each appends one field (the caller adds the '\t' separators).
void append_copy_text(std::string& out, std::string_view value);
void append_copy_null(std::string& out);
void append_copy_int(std::string& out, long long value);
// REAL columns: the shortest exact decimal of the double; the server rounds it to float4.
void append_copy_real(std::string& out, double value);

template <class T, class Fn>
void append_copy_optional(std::string& out, const std::optional<T>& value, Fn&& append) {
  if (value) append(out, *value); else append_copy_null(out);
}

}  // namespace pm

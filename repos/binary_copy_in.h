#pragma once
// BinaryCopyIn: `COPY table (columns) FROM STDIN (FORMAT binary)` inside a caller's transaction,
// on that transaction's own libpq connection (libpqxx 6.4 streams only text). The binary format
// spares the server parsing and de-escaping every row, which is most of what it does per row
// besides the inserts themselves.
//
// Contract:
// - The caller writes rows with begin_row() and one field call per column, in column order, then
//   complete(). Data goes out in blocks as it accumulates.
// - Failures throw libpqxx exceptions carrying the server's SQLSTATE: pqxx::unique_violation and
//   the other integrity-constraint classes, pqxx::data_exception for class 22, pqxx::sql_error
//   otherwise (classify by sqlstate()), pqxx::broken_connection when the connection is lost. A REAL value outside float range throws
//   pqxx::data_exception with SQLSTATE 22003 before anything is sent for it, as the server would.
// - Destroying an incomplete copy ends it with an error: the server rolls the statement back and
//   the transaction is aborted, as after any failed statement. The connection is left with no
//   command in progress, so libpqxx can roll back.
// - `owed` (optional): statements the transaction owes (OwedStatements), sent in front of the COPY
//   in the same query; they have run once the constructor returns.
// - Single-threaded, like its transaction; nothing else may use the transaction until
//   complete() returns or the object is destroyed.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <pqxx/dbtransaction>

#include "repos/owed_statements.h"

struct pg_conn;

namespace pm {

class BinaryCopyIn {
 public:
  BinaryCopyIn(pqxx::dbtransaction& tx, const std::string& table, const std::vector<std::string>& columns,
               OwedStatements* owed = nullptr);
  ~BinaryCopyIn();
  BinaryCopyIn(const BinaryCopyIn&) = delete;
  BinaryCopyIn& operator=(const BinaryCopyIn&) = delete;

  void begin_row(std::int16_t fields);
  void text(std::string_view value);
  void null();
  void int4(std::int32_t value);
  void int8(std::int64_t value);
  // A REAL column: the double rounded to float, as the server's float4 input rounds it.
  void float4(double value);
  // Sends what is left, ends the COPY and checks the server's verdict; returns the rows copied.
  std::uint64_t complete();

 private:
  void put_be(std::uint64_t value, int bytes);
  void flush_if_full();
  void send();

  pg_conn* conn_;
  std::string query_;
  std::string buffer_;
  bool open_ = false;  // COPY started on the server and not ended yet
};

}  // namespace pm

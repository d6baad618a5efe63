#include "repos/binary_copy_in.h"

#include "repos/raw_connection.h"
#include "repos/real_range.h"

#include <libpq-fe.h>

#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include <pqxx/except>

namespace pm {

namespace {

constexpr std::size_t kBlockBytes = 256 * 1024;
constexpr char kSignature[] = "PGCOPY\n\377\r\n";  // 11 bytes with its NUL

// Reads the connection's remaining results. A result still in COPY state means libpq could not end
// the COPY (the connection is unusable): stop there rather than loop; the caller throws
// broken_connection and the connection is dropped.
void drain(pg_conn* conn) {
  while (PGresult* res = PQgetResult(conn)) {
    const ExecStatusType status = PQresultStatus(res);
    PQclear(res);
    if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH) return;
  }
}

}  // namespace

BinaryCopyIn::BinaryCopyIn(pqxx::dbtransaction& tx, const std::string& table, const std::vector<std::string>& columns,
                           OwedStatements* owed)
    : conn_(raw_connection(tx)) {
  query_ = "COPY " + table + " (";
  for (std::size_t i = 0; i < columns.size(); ++i) query_ += (i ? ", " : "") + tx.quote_name(columns[i]);
  query_ += ") FROM STDIN (FORMAT binary)";
  // Through libpqxx, as its own table writer does: that opens the transaction (and a savepoint's
  // SAVEPOINT, which libpqxx sends only with a statement's first use) before the data flows, and
  // reports a refused statement as any other. The server is then waiting for COPY data.
  tx.exec(owed != nullptr ? owed->prefix() + query_ : query_);
  if (owed != nullptr) owed->ran();
  open_ = true;
  buffer_.reserve(kBlockBytes + 4096);
  buffer_.append(kSignature, sizeof kSignature);  // the signature and its terminating NUL
  put_be(0, 4);                                   // flags
  put_be(0, 4);                                   // header extension length
}

BinaryCopyIn::~BinaryCopyIn() {
  if (!open_) return;
  PQputCopyEnd(conn_, "pm-ingestd abandoned this COPY");
  drain(conn_);
}

void BinaryCopyIn::put_be(std::uint64_t value, int bytes) {
  // Network byte order: the value's low `bytes` bytes, most significant first.
  std::uint64_t be = value << (8 * (8 - bytes));
  if constexpr (std::endian::native == std::endian::little) be = __builtin_bswap64(be);
  char out[8];
  std::memcpy(out, &be, sizeof out);
  buffer_.append(out, static_cast<std::size_t>(bytes));
}

void BinaryCopyIn::begin_row(std::int16_t fields) {
  flush_if_full();
  put_be(static_cast<std::uint16_t>(fields), 2);
}

void BinaryCopyIn::text(std::string_view value) {
  put_be(static_cast<std::uint32_t>(value.size()), 4);
  buffer_.append(value.data(), value.size());
}

void BinaryCopyIn::null() { put_be(0xFFFFFFFFu, 4); }

void BinaryCopyIn::int4(std::int32_t value) {
  put_be(4, 4);
  put_be(static_cast<std::uint32_t>(value), 4);
}

void BinaryCopyIn::int8(std::int64_t value) {
  put_be(8, 4);
  put_be(static_cast<std::uint64_t>(value), 8);
}

void BinaryCopyIn::float4(double value) {
  const float f = static_cast<float>(value);
  // The server's float4 input refuses what overflows to infinity or underflows to zero.
  if (std::isfinite(value) && !fits_real(value))
    throw pqxx::data_exception("ERROR:  value out of range for type real: " + std::to_string(value), query_, "22003");
  std::uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  put_be(4, 4);
  put_be(bits, 4);
}

void BinaryCopyIn::flush_if_full() {
  if (buffer_.size() >= kBlockBytes) send();
}

void BinaryCopyIn::send() {
  if (buffer_.empty()) return;
  if (PQputCopyData(conn_, buffer_.data(), static_cast<int>(buffer_.size())) != 1) {
    const std::string message = PQerrorMessage(conn_);
    open_ = false;
    drain(conn_);
    throw pqxx::broken_connection(message);
  }
  buffer_.clear();
}

std::uint64_t BinaryCopyIn::complete() {
  put_be(0xFFFF, 2);  // trailer
  send();
  open_ = false;
  if (PQputCopyEnd(conn_, nullptr) != 1) {
    const std::string message = PQerrorMessage(conn_);
    drain(conn_);
    throw pqxx::broken_connection(message);
  }
  // The copy's outcome, then libpq's end-of-command marker.
  PGresult* res = PQgetResult(conn_);
  const bool ok = res != nullptr && PQresultStatus(res) == PGRES_COMMAND_OK;
  const std::uint64_t rows = ok ? std::strtoull(PQcmdTuples(res), nullptr, 10) : 0;
  const std::string message = ok ? "" : res != nullptr ? PQresultErrorMessage(res) : PQerrorMessage(conn_);
  const char* state = !ok && res != nullptr ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  const std::string sqlstate = state != nullptr ? state : "";
  PQclear(res);
  drain(conn_);
  if (ok) return rows;
  throw_sql_error(conn_, message, query_, sqlstate);
}

}  // namespace pm

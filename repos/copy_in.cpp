#include "repos/copy_in.h"

#include <charconv>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

// libpqxx 6.4 keeps stream_to::write_raw_line private; the older tablewriter exposes it and does
// exactly what we need (one PQputCopyData per row). Its deprecation is confined to this file.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <pqxx/tablewriter>

namespace pm {

namespace {

// More fields than any table has columns (PostgreSQL's limit is 1600): for a COPY of all columns.
constexpr std::size_t kMaxTableColumns = 1600;

}  // namespace

struct CopyIn::Impl {
  Impl(pqxx::transaction_base& tx, const std::string& table, const std::vector<std::string>& columns)
      : writer(tx, table, columns.begin(), columns.end()),
        fields(columns.empty() ? kMaxTableColumns : columns.size()) {}
  pqxx::tablewriter writer;
  std::size_t fields;  // the columns the COPY fills (at most)
  bool completed = false;
};

CopyIn::CopyIn(pqxx::transaction_base& tx, const std::string& table,
               const std::vector<std::string>& columns)
    : impl_(std::make_unique<Impl>(tx, table, columns)) {}

// The tablewriter can only end a COPY successfully (PQputCopyEnd without an error, its destructor
// included), which stores the rows sent so far: in autocommit they were committed. libpqxx 6.4
// cannot send the COPY a failure (BinaryCopyIn's PQputCopyEnd with a message needs the libpq
// connection, which it hands out only for a dbtransaction), so the copy is made to fail: a last row
// with one field more than the COPY has columns, which the server refuses ("extra data after last
// expected column") before converting any field, failing the whole statement; its first field
// names the cause in the server's log (the error's CONTEXT). The COPY is ended through complete(),
// whose error is dropped here; the writer's destructor would have left it as the transaction's
// pending error, thrown by its next statement.
CopyIn::~CopyIn() {
  if (impl_->completed) return;
  try {
    impl_->writer.write_raw_line("pm-ingestd abandoned this COPY" + std::string(impl_->fields, '\t'));
  } catch (const std::exception&) {
    // The COPY already failed (or the connection is gone): it cannot store anything either way.
  }
  try {
    impl_->writer.complete();
  } catch (const std::exception&) {
    // The refusal asked for above, or the failure before it.
  }
}

void CopyIn::write_rows(const std::string& rows) { impl_->writer.write_raw_line(rows); }

void CopyIn::complete() {
  if (!impl_->completed) {
    impl_->completed = true;
    impl_->writer.complete();
  }
}

#pragma GCC diagnostic pop

namespace {

constexpr std::uint64_t kOnes = 0x0101010101010101ull;
constexpr std::uint64_t kHighs = 0x8080808080808080ull;

// Non-zero when one of the eight bytes of `word` equals `byte` (exact: no false positives).
inline std::uint64_t has_byte(std::uint64_t word, unsigned char byte) {
  const std::uint64_t x = word ^ (kOnes * byte);
  return ~(((x & ~kHighs) + ~kHighs) | x | ~kHighs);
}

// Index of the first byte at or after `from` that COPY text must escape, or value.size().
std::size_t next_special(std::string_view value, std::size_t from) {
  std::size_t i = from;
  // Eight bytes at a time while none of them is special.
  for (; i + 8 <= value.size(); i += 8) {
    std::uint64_t word;
    std::memcpy(&word, value.data() + i, 8);
    if (has_byte(word, '\\') | has_byte(word, '\t') | has_byte(word, '\n') | has_byte(word, '\r')) break;
  }
  for (; i < value.size(); ++i) {
    const char c = value[i];
    if (c == '\\' || c == '\t' || c == '\n' || c == '\r') return i;
  }
  return i;
}

}  // namespace

void append_copy_text(std::string& out, std::string_view value) {
  // Copy runs of ordinary bytes at once; only backslash, tab, newline and carriage return need escaping.
  std::size_t run = 0;
  for (std::size_t i = next_special(value, 0); i < value.size(); i = next_special(value, run)) {
    const char c = value[i];
    out.append(value.data() + run, i - run);
    out += '\\';
    out += c == '\t' ? 't' : c == '\n' ? 'n' : c == '\r' ? 'r' : '\\';
    run = i + 1;
  }
  out.append(value.data() + run, value.size() - run);
}

void append_copy_null(std::string& out) { out += "\\N"; }

void append_copy_int(std::string& out, long long value) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, end);
}

void append_copy_real(std::string& out, double value) {
  char buf[40];
  // Shortest text that reads back to the same double; the server rounds it to float4 and rejects
  // values outside float4's range (a double narrowed here would turn into Infinity silently).
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  if (ec != std::errc{}) {
    out += "NaN";
    return;
  }
  out.append(buf, end);
}

}  // namespace pm

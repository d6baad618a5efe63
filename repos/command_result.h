#pragma once
// CommandResult: what Database::execute returns (storage-api.md 1.8, `execute` in C++ form).
// The original returned the command status string ("INSERT 0 1", "UPDATE 3", "DELETE 0") and its
// repositories only ever used it by parsing the last token as the affected-row count (D20). Here
// that count comes from libpq (PQcmdTuples through pqxx::result::affected_rows), never from text.
// The tag text itself is not available: libpqxx 6.4 keeps result::cmd_status() private.
#include <cstdint>

#include <pqxx/result>

namespace pm {

struct CommandResult {
  // Rows inserted, updated, deleted, selected, moved or copied by the statement; 0 for commands
  // that report no count (CREATE TABLE, SET, ...).
  std::int64_t affected_rows = 0;

  static CommandResult of(const pqxx::result& result) {
    return CommandResult{static_cast<std::int64_t>(result.affected_rows())};
  }
};

}  // namespace pm

#pragma once
// Migrator: applies the numbered SQL files of seed/ (bundled into the binary at build time) in name
// order, each in its own transaction (unless marked, below), and records each one in `pm_schema_migrations` (name,
// checksum, time). Applied files are skipped, so running twice does nothing. A failing file rolls
// back and MigrationError names it with the server's message; files after it are not attempted.
// A file whose first line is kOutsideATransaction runs outside a transaction (one statement, such
// as CREATE INDEX CONCURRENTLY, which builds an index on a production-sized table without
// blocking its writers); an invalid index it names (a cut-short build) is dropped first, and one
// left invalid after it is a MigrationError. No migration runs under the pool's statement_timeout;
// one in a transaction waits at most 5 s for a table lock (writers queue behind that wait), then
// fails naming the lock (55P03), to be run again. A session advisory lock serialises concurrent
// migrators; the second tries for it every 200 ms rather than block (a blocked one holds a snapshot
// the first one's CREATE INDEX CONCURRENTLY would wait for: a deadlock). An applied file whose text changed
// since is reported as an error rather than silently ignored. After applying, migrate() checks the
// unique index G2 stands on (g2_index.h) and throws SchemaError naming what is wrong when the
// triggers table exists without it (an older index of the same name is not replaced by IF NOT
// EXISTS).
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "repos/database.h"

namespace pm {

inline constexpr char kOutsideATransaction[] = "-- pm-migrate: outside a transaction";
// The session advisory lock every migrator holds while it migrates ("pm-migr").
inline constexpr long long kMigrationLockKey = 0x706d2d6d696772;

struct Migration {
  std::string name;  // e.g. "01_schema.sql"
  std::string sql;
};

const std::vector<Migration>& bundled_migrations();

struct MigrationReport {
  std::vector<std::string> applied;  // newly applied, in order
  std::vector<std::string> skipped;  // already applied before
};

class MigrationError : public std::runtime_error {
 public:
  MigrationError(std::string migration, const std::string& message)
      : std::runtime_error("migration " + migration + " failed: " + message),
        migration_(std::move(migration)) {}
  const std::string& migration() const { return migration_; }

 private:
  std::string migration_;
};

// Thrown by Migrator::require_applied(): names the bundled migrations the database lacks.
class MigrationsPending : public std::runtime_error {
 public:
  explicit MigrationsPending(const std::vector<std::string>& names);
};

class Migrator {
 public:
  // Told once, while migrate() waits for another migrator's lock, who holds it ("pid N").
  using WaitNotice = std::function<void(const std::string& holder)>;

  explicit Migrator(Database& db, WaitNotice waiting = {}) : db_(db), waiting_(std::move(waiting)) {}
  MigrationReport migrate(const std::vector<Migration>& migrations = bundled_migrations());
  // Names not applied yet, in order. Reads only (a database never migrated has them all
  // pending), so it may run while another process migrates (the daemon's writer asks at connect).
  std::vector<std::string> pending(const std::vector<Migration>& migrations = bundled_migrations());
  // Throws MigrationsPending ("... run `pm-ingestctl migrate`") unless none is pending; reads only.
  // For a program that writes what the bundled migrations define (the writer, replay).
  void require_applied(const std::vector<Migration>& migrations = bundled_migrations());

 private:
  Database& db_;
  WaitNotice waiting_;
};

// Stable 64-bit FNV-1a of the text, hex; what pm_schema_migrations.checksum holds.
std::string migration_checksum(const std::string& sql);

}  // namespace pm

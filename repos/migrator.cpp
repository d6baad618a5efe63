#include "repos/migrator.h"

#include <cctype>
#include <chrono>
#include <cstdio>
#include <map>
#include <thread>

#include <pqxx/except>
#include <pqxx/nontransaction>

#include "repos/g2_index.h"
#include "repos/util/clock.h"

namespace pm {

namespace {

const char* const kCreateBookkeeping = R"SQL(
CREATE TABLE IF NOT EXISTS pm_schema_migrations (
  name TEXT PRIMARY KEY,
  checksum TEXT NOT NULL,
  applied_at TEXT NOT NULL
))SQL";

// How long a migration in a transaction may wait for a table lock (the writers queue behind it).
constexpr std::chrono::milliseconds kMigrationLockTimeout{5000};

// The applied migrations' checksums. Read-only (a database never migrated has applied nothing),
// so a daemon may ask while an operator migrates.
std::map<std::string, std::string> applied_checksums_if_any(pqxx::connection& c) {
  pqxx::read_transaction tx(c);
  std::map<std::string, std::string> applied;
  if (tx.exec1("SELECT to_regclass('pm_schema_migrations') IS NOT NULL")[0].as<bool>())
    for (const auto& row : tx.exec("SELECT name, checksum FROM pm_schema_migrations"))
      applied[row[0].as<std::string>()] = row[1].as<std::string>();
  tx.commit();
  return applied;
}

// migrate(): the bookkeeping table first, then what it holds.
std::map<std::string, std::string> applied_checksums(pqxx::connection& c) {
  pqxx::work tx(c);
  tx.exec(kCreateBookkeeping);
  tx.commit();
  return applied_checksums_if_any(c);
}

std::string first_line(std::string message) {
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  return message;
}

}  // namespace

std::string migration_checksum(const std::string& sql) {
  unsigned long long hash = 1469598103934665603ULL;
  for (const unsigned char c : sql) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", hash);
  return buf;
}

namespace {

// Takes the migration lock, trying every 200 ms: a migrator blocked in pg_advisory_lock() holds a
// snapshot all the while, which the other migrator's CREATE INDEX CONCURRENTLY waits for (it
// waits out every older snapshot) while it holds the lock: a deadlock, one of them aborted.
// `waiting` (if any) is told once who holds the lock, so that an operator sees why nothing happens.
void lock_migrations(pqxx::connection& c, const Migrator::WaitNotice& waiting) {
  const std::string key = std::to_string(kMigrationLockKey);
  bool told = false;
  for (;;) {
    {
      pqxx::nontransaction lock(c);
      if (lock.exec1("SELECT pg_try_advisory_lock(" + key + ")")[0].as<bool>()) return;
      if (waiting && !told) {
        // The advisory lock's 64-bit key is pg_locks' classid (high half) and objid (low half);
        // pg_locks shows every database's locks, and a migrator of another database holds the
        // same key there (it was named beside the real holder).
        const auto holder = lock.exec1(
            "SELECT string_agg('pid ' || pid, ', ') FROM pg_locks WHERE locktype = 'advisory' AND granted AND "
            "database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND "
            "((classid::bigint << 32) | objid::bigint) = " + key)[0];
        waiting(holder.is_null() ? "another session" : holder.as<std::string>());
        told = true;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

void unlock_migrations(pqxx::connection& c) {
  pqxx::nontransaction unlock(c);
  unlock.exec("SELECT pg_advisory_unlock_all()");
}

// Whether `name` appears in `sql` as a whole identifier.
bool names_identifier(const std::string& sql, const std::string& name) {
  const auto part_of_identifier = [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_'; };
  for (std::size_t at = sql.find(name); at != std::string::npos; at = sql.find(name, at + 1)) {
    const std::size_t end = at + name.size();
    if ((at == 0 || !part_of_identifier(sql[at - 1])) && (end == sql.size() || !part_of_identifier(sql[end]))) return true;
  }
  return false;
}

// Indexes on the search_path that `sql` names and that are invalid: what a CREATE INDEX
// CONCURRENTLY cut short (cancelled, timed out, the session lost) leaves behind, and what its
// IF NOT EXISTS would then take for done.
std::vector<std::string> invalid_indexes_named_in(pqxx::connection& c, const std::string& sql) {
  pqxx::read_transaction tx(c);
  std::vector<std::string> names;  // as DROP INDEX takes them (schema-qualified where needed)
  // The ones the file's unqualified names reach: visible on the search_path (an index lives in
  // its table's schema, not necessarily the current one).
  for (const auto& row : tx.exec(R"(SELECT ic.relname, ic.oid::regclass::text FROM pg_index i
                                    JOIN pg_class ic ON ic.oid = i.indexrelid
                                    WHERE NOT i.indisvalid AND pg_catalog.pg_table_is_visible(ic.oid))"))
    if (names_identifier(sql, row[0].as<std::string>())) names.push_back(row[1].as<std::string>());
  tx.commit();
  return names;
}

void record_applied(pqxx::transaction_base& tx, const Migration& m, const std::string& checksum) {
  tx.exec_params("INSERT INTO pm_schema_migrations (name, checksum, applied_at) VALUES ($1, $2, $3)", m.name, checksum,
                 now_iso());
}

// A file that starts with kOutsideATransaction (one statement that cannot run in a transaction
// block: CREATE INDEX CONCURRENTLY), then its bookkeeping row. An invalid index the file names is
// dropped first and must not be left after it. The session's statement_timeout is lifted (the
// lease's reset restores it). REQUIRES: the migration lock held on `c`.
void apply_outside_a_transaction(pqxx::connection& c, const Migration& m, const std::string& checksum) {
  {
    // No lock_timeout either: CREATE and DROP INDEX CONCURRENTLY keep no writer waiting, and
    // may wait out long transactions of others.
    pqxx::nontransaction settings(c);
    settings.exec("SET statement_timeout = 0");
  }
  for (const std::string& name : invalid_indexes_named_in(c, m.sql)) {
    pqxx::nontransaction drop(c);
    drop.exec("DROP INDEX CONCURRENTLY IF EXISTS " + name);
  }
  {
    pqxx::nontransaction run(c);
    run.exec(m.sql);
  }
  if (const auto left = invalid_indexes_named_in(c, m.sql); !left.empty())
    throw MigrationError(m.name, "index " + left.front() + " was left invalid; run the migration again");
  pqxx::work tx(c);
  record_applied(tx, m, checksum);
  tx.commit();
}

// One file and its bookkeeping row in one transaction (or, for a file marked so, the file outside
// one, then its row); any failure is a MigrationError naming it.
void apply_one(pqxx::connection& c, const Migration& m, const std::string& checksum) {
  try {
    if (m.sql.rfind(kOutsideATransaction, 0) == 0) return apply_outside_a_transaction(c, m, checksum);
    pqxx::work tx(c);
    // A migration may rewrite or index a production-sized table: no statement timeout of the
    // pool's (60 s by default) cuts it off, failing the same way at every retry. A lock it waits
    // for is bounded instead: while it waits, every writer of that table queues behind it.
    tx.exec("SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = " +
            std::to_string(kMigrationLockTimeout.count()));
    tx.exec(m.sql);
    record_applied(tx, m, checksum);
    tx.commit();
  } catch (const MigrationError&) {
    throw;
  } catch (const pqxx::sql_error& error) {
    std::string message = first_line(error.what());
    if (error.sqlstate() == "55P03")  // lock_not_available
      message += " (another session held a lock this migration needs for " +
                 std::to_string(kMigrationLockTimeout.count() / 1000) +
                 " s, a long transaction on the table perhaps: writers were kept waiting no longer; run migrate again)";
    throw MigrationError(m.name, message);
  } catch (const std::exception& error) {
    throw MigrationError(m.name, first_line(error.what()));
  }
}

// Skips the applied files (after checking their text did not change) and applies the others, in
// order; the first failure throws. REQUIRES: the migration lock held on `c`.
MigrationReport apply_all(pqxx::connection& c, const std::vector<Migration>& migrations) {
  MigrationReport report;
  const auto applied = applied_checksums(c);
  for (const auto& m : migrations) {
    const std::string checksum = migration_checksum(m.sql);
    if (auto it = applied.find(m.name); it != applied.end()) {
      if (it->second != checksum)
        throw MigrationError(m.name, "its text changed after it was applied (checksum " +
                                         it->second + " recorded, " + checksum + " now)");
      report.skipped.push_back(m.name);
      continue;
    }
    apply_one(c, m, checksum);
    report.applied.push_back(m.name);
  }
  return report;
}

// What the library relies on and the files cannot guarantee (see g2_index.h). Throws SchemaError.
void verify_schema(pqxx::connection& c) {
  pqxx::read_transaction tx(c);
  require_g2_index(tx);
}

}  // namespace

MigrationReport Migrator::migrate(const std::vector<Migration>& migrations) {
  Lease lease = db_.lease();
  pqxx::connection& c = lease.connection();
  lock_migrations(c, waiting_);
  MigrationReport report;
  try {
    report = apply_all(c, migrations);
    verify_schema(c);
  } catch (...) {
    try {
      unlock_migrations(c);
    } catch (...) {
      lease.discard();  // the lock may still be held: the session must not go back to the pool
    }
    throw;
  }
  unlock_migrations(c);
  return report;
}

std::vector<std::string> Migrator::pending(const std::vector<Migration>& migrations) {
  Lease lease = db_.lease();
  const auto applied = applied_checksums_if_any(lease.connection());
  std::vector<std::string> names;
  for (const auto& m : migrations)
    if (!applied.count(m.name)) names.push_back(m.name);
  return names;
}

namespace {
std::string pending_message(const std::vector<std::string>& names) {
  std::string list;
  for (const std::string& name : names) list += (list.empty() ? "" : ", ") + name;
  return "the database lacks migrations this build needs (" + list + "): run `pm-ingestctl migrate`";
}
}  // namespace

MigrationsPending::MigrationsPending(const std::vector<std::string>& names) : std::runtime_error(pending_message(names)) {}

void Migrator::require_applied(const std::vector<Migration>& migrations) {
  const std::vector<std::string> names = pending(migrations);
  if (!names.empty()) throw MigrationsPending(names);
}

}  // namespace pm

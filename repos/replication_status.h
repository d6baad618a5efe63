#pragma once
// ReplicationStatus: what the connected PostgreSQL server knows of its standbys, so a caller can
// tell whether a commit has reached every node that could be promoted in a failover.
//
// Contract:
// - read_replication_status() runs two read-only queries in the caller's transaction. On a
//   primary it returns the current WAL insert position and every standby it knows: each physical
//   replication slot (restart_lsn = what that standby has flushed; kept while it is disconnected)
//   and each physical WAL sender (pg_stat_replication.flush_lsn). Base backups and logical
//   replication (never promoted) are left out. On a standby (pg_is_in_recovery()) it returns
//   in_recovery and nothing else. A standby streaming through a slot is its slot's row only.
//   The timeline (from the WAL file name of the insert position) changes with every promotion:
//   positions of different timelines are not comparable.
// - A position the server does not show (NULL: a slot never used, or a role without
//   pg_read_all_stats / pg_monitor reading pg_stat_replication) stays unknown; confirmed_lsn()
//   then confirms nothing, so a caller waiting on it errs on the side of keeping data.
// - Standbys that replicate from a standby (cascading) are not visible here: the standby they
//   follow stands for them.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <pqxx/transaction_base>

namespace pm {

struct StandbyPosition {
  std::string name;                      // "slot <name>" or "sender <application_name> <client address>"
  std::optional<std::uint64_t> flushed;  // WAL position flushed on that standby; nullopt: not shown
};

struct ReplicationStatus {
  bool in_recovery = false;       // the server is a standby: nothing may be written to it
  std::uint64_t current_lsn = 0;  // pg_current_wal_insert_lsn() on a primary
  std::uint64_t flushed_lsn = 0;  // pg_current_wal_flush_lsn(): durable on the primary itself
  // Where the last WAL record inserted so far ends: current_lsn, or the start of its page when
  // current_lsn only steps over a page header (wal_record_end). A commit made before this read is
  // durable once flushed_lsn (or a standby's position) reaches it, even when its commit did not
  // wait for the flush (synchronous_commit = off).
  std::uint64_t last_record_end = 0;
  std::uint32_t timeline = 0;
  std::vector<StandbyPosition> standbys;

  // The lowest position flushed on the primary and on every standby; nullopt while a standby does
  // not show its position.
  std::optional<std::uint64_t> confirmed_lsn() const;
  // Standbys whose position is not shown, by name, comma-separated ("" when none).
  std::string unknown_positions() const;
};

ReplicationStatus read_replication_status(pqxx::transaction_base& tx);

// "16/B374D848" -> 0x16B374D848. Throws std::invalid_argument on anything else.
std::uint64_t parse_pg_lsn(std::string_view text);
// The end of the last record before the insert position `insert_lsn`. PostgreSQL reports an
// insert position at the start of a page as just past that page's header (24 bytes; 40 on the
// first page of a WAL segment), bytes no flush writes until a record follows. block_size and
// segment_size are the server's wal_block_size and wal_segment_size.
std::uint64_t wal_record_end(std::uint64_t insert_lsn, std::uint64_t block_size, std::uint64_t segment_size);
std::string format_pg_lsn(std::uint64_t lsn);

}  // namespace pm

#pragma once
// IngestCheckpointRepository: `pm_ingest_checkpoints`, one row per daemon instance: the log
// position up to which the instance's events are applied. save() is meant to run in the same
// transaction as the batch it covers, so the tables and the checkpoint commit or roll back
// together (this is what makes replay exact). A checkpoint never moves backwards, never switches
// logs and, when told where it must be (IngestCheckpoint::follows), never jumps: save() throws
// CheckpointConflict instead (two daemons sharing an instance id, a log directory swapped under a
// running instance, or committed batches a hidden PostgreSQL restart took back).
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include <pqxx/transaction_base>

#include "repos/db_target.h"

namespace pm {

// What identifies the last applied record in the log besides its position: its bytes in the log
// and the CRC-32C of its payload (columns record_bytes and record_crc, both set or both NULL).
struct CheckpointRecord {
  std::uint64_t bytes = 0;
  std::uint32_t payload_crc = 0;
};

struct IngestCheckpoint {
  std::string instance_id;
  std::string log_id;
  std::int64_t lsn = 0;
  std::int64_t segment = 0;
  std::int64_t segment_offset = 0;
  std::int64_t log_offset = 0;
  std::int64_t applied_events = 0;
  std::string updated_at;
  // The last applied record (seed/07_checkpoint_record.sql); absent in rows written before that
  // file, or by tests.
  std::optional<CheckpointRecord> record;
  // For save(): where the stored checkpoint must be for this one to advance it, the end of the
  // batch before (0: no row yet). A row elsewhere is a CheckpointConflict: a restart of PostgreSQL
  // its sessions did not show (a transaction-pooling proxy) took committed batches back, and
  // advancing over them would skip their events for good. Unset: any older position of the same
  // log will do (pm-ingestctl replay, whose batches may leave LSNs out).
  std::optional<std::int64_t> follows;
};

class CheckpointConflict : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class IngestCheckpointRepository {
 public:
  explicit IngestCheckpointRepository(DbTarget target) : target_(target) {}

  std::optional<IngestCheckpoint> get(const std::string& instance_id) const;
  // Inserts or advances the row to `checkpoint` (applied_events is added to the stored count), from
  // where checkpoint.follows says when it is set.
  void save(const IngestCheckpoint& checkpoint) const;
  // save() in two halves, for a caller that sends the statement with others (exec_together): its
  // SQL text with the values inline (quoted by tx), and the check of its affected rows, which
  // throws CheckpointConflict unless the row moved.
  static std::string save_statement(const pqxx::transaction_base& tx, const IngestCheckpoint& checkpoint);
  static void check_saved(const IngestCheckpoint& checkpoint, std::uint64_t affected_rows);
  // Deletes the instance's row (operator reset); true if there was one.
  bool reset(const std::string& instance_id) const;

 private:
  DbTarget target_;
};

// DeadLetterRepository: `pm_dead_letters`, events PostgreSQL refused on their own, kept with the
// server's error so an operator can inspect, fix and replay them. A dead letter is keyed by
// (instance_id, log_id, lsn) (seed/08_dead_letters_log_id.sql): LSNs are numbered per log, and a
// new log after a checkpoint reset numbers from 1 again.
struct DeadLetter {
  std::string instance_id;
  std::string log_id;  // the log the lsn belongs to, as pm_ingest_checkpoints.log_id holds it (wal::log_id_hex)
  std::int64_t lsn = 0;
  std::string event_type;
  std::string payload;
  std::string error;
  std::optional<std::string> sqlstate;
};

class DeadLetterRepository {
 public:
  explicit DeadLetterRepository(DbTarget target) : target_(target) {}
  // Stores `letter`: true when stored now, false when a letter of the same (instance_id, log_id,
  // lsn) was stored before: one log's lsn names one record, so that is this event's, kept as it is
  // (a replayed batch does not store it twice; its payload may be rendered otherwise by another
  // version, and a skipped range of a replay is stored under its first lsn). Log ids are random:
  // the rows of another log, or of none (before seed/08), never share a key with this one's.
  bool add(const DeadLetter& letter) const;
  std::int64_t count() const;

 private:
  DbTarget target_;
};

}  // namespace pm

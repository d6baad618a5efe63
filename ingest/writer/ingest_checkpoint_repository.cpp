#include "ingest/writer/ingest_checkpoint_repository.h"

#include "repos/util/clock.h"

namespace pm {

std::optional<IngestCheckpoint> IngestCheckpointRepository::get(const std::string& instance_id) const {
  return target_.run([&](pqxx::transaction_base& tx) -> std::optional<IngestCheckpoint> {
    auto r = tx.exec_params(
        "SELECT instance_id, log_id, lsn, segment, segment_offset, log_offset, applied_events, updated_at, "
        "record_bytes, record_crc FROM pm_ingest_checkpoints WHERE instance_id = $1",
        instance_id);
    if (r.empty()) return std::nullopt;
    IngestCheckpoint c;
    c.instance_id = r[0][0].as<std::string>();
    c.log_id = r[0][1].as<std::string>();
    c.lsn = r[0][2].as<std::int64_t>();
    c.segment = r[0][3].as<std::int64_t>();
    c.segment_offset = r[0][4].as<std::int64_t>();
    c.log_offset = r[0][5].as<std::int64_t>();
    c.applied_events = r[0][6].as<std::int64_t>();
    c.updated_at = r[0][7].as<std::string>();
    if (!r[0][8].is_null() && !r[0][9].is_null())
      c.record = CheckpointRecord{r[0][8].as<std::uint64_t>(), static_cast<std::uint32_t>(r[0][9].as<std::int64_t>())};
    return c;
  });
}

namespace {
// The values of columns record_bytes and record_crc in an INSERT's VALUES list.
std::string record_values(const std::optional<CheckpointRecord>& record) {
  return record ? std::to_string(record->bytes) + ", " + std::to_string(record->payload_crc) : "NULL, NULL";
}
}  // namespace

namespace {

// The save of a checkpoint that must follow the stored one at c.follows (> 0): the row moves only
// from there.
std::string advance_statement(const pqxx::transaction_base& tx, const IngestCheckpoint& c) {
  return "UPDATE pm_ingest_checkpoints SET lsn = " + std::to_string(c.lsn) + ", segment = " + std::to_string(c.segment) +
         ", segment_offset = " + std::to_string(c.segment_offset) + ", log_offset = " + std::to_string(c.log_offset) +
         ", applied_events = applied_events + " + std::to_string(c.applied_events) + ", updated_at = " + tx.quote(now_iso()) +
         ", record_bytes = " + (c.record ? std::to_string(c.record->bytes) : "NULL") +
         ", record_crc = " + (c.record ? std::to_string(c.record->payload_crc) : "NULL") +
         " WHERE instance_id = " + tx.quote(c.instance_id) + " AND log_id = " + tx.quote(c.log_id) +
         " AND lsn = " + std::to_string(*c.follows);
}

}  // namespace

std::string IngestCheckpointRepository::save_statement(const pqxx::transaction_base& tx, const IngestCheckpoint& c) {
  if (c.follows && *c.follows > 0) return advance_statement(tx, c);
  // No row yet (follows 0): an existing one is a conflict, whatever its position.
  const std::string guard = c.follows ? " AND false" : "";
  return R"(INSERT INTO pm_ingest_checkpoints
         (instance_id, log_id, lsn, segment, segment_offset, log_offset, applied_events, updated_at,
          record_bytes, record_crc)
       VALUES ()" + tx.quote(c.instance_id) + ", " + tx.quote(c.log_id) + ", " + std::to_string(c.lsn) + ", " +
         std::to_string(c.segment) + ", " + std::to_string(c.segment_offset) + ", " + std::to_string(c.log_offset) +
         ", " + std::to_string(c.applied_events) + ", " + tx.quote(now_iso()) + ", " + record_values(c.record) + R"()
       ON CONFLICT (instance_id) DO UPDATE
         SET lsn = EXCLUDED.lsn, segment = EXCLUDED.segment, segment_offset = EXCLUDED.segment_offset,
             log_offset = EXCLUDED.log_offset,
             applied_events = pm_ingest_checkpoints.applied_events + EXCLUDED.applied_events,
             updated_at = EXCLUDED.updated_at, record_bytes = EXCLUDED.record_bytes,
             record_crc = EXCLUDED.record_crc
         WHERE pm_ingest_checkpoints.log_id = EXCLUDED.log_id AND pm_ingest_checkpoints.lsn < EXCLUDED.lsn)" + guard;
}

void IngestCheckpointRepository::check_saved(const IngestCheckpoint& c, std::uint64_t affected_rows) {
  if (affected_rows == 1) return;
  if (c.follows)
    throw CheckpointConflict("checkpoint of instance '" + c.instance_id + "' was not advanced to lsn " +
                             std::to_string(c.lsn) + ": the stored one is not " +
                             (*c.follows > 0 ? "at lsn " + std::to_string(*c.follows) : std::string("absent")) +
                             ", where the batches before left it (PostgreSQL restarted and lost commits its "
                             "sessions did not see end, or another writer moved it)");
  throw CheckpointConflict("checkpoint of instance '" + c.instance_id + "' was not advanced to lsn " +
                           std::to_string(c.lsn) + ": the stored one is newer or belongs to another log");
}

void IngestCheckpointRepository::save(const IngestCheckpoint& c) const {
  target_.run([&](pqxx::transaction_base& tx) { check_saved(c, tx.exec(save_statement(tx, c)).affected_rows()); });
}

bool IngestCheckpointRepository::reset(const std::string& instance_id) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return tx.exec_params("DELETE FROM pm_ingest_checkpoints WHERE instance_id = $1", instance_id).affected_rows() > 0;
  });
}

bool DeadLetterRepository::add(const DeadLetter& d) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    const pqxx::binarystring payload(d.payload);
    const bool stored =
        tx.exec_params(
              R"(INSERT INTO pm_dead_letters (instance_id, log_id, lsn, event_type, payload, error, sqlstate, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (instance_id, log_id, lsn) DO NOTHING)",
              d.instance_id, d.log_id, d.lsn, d.event_type, payload, d.error, d.sqlstate, now_iso())
            .affected_rows() == 1;
    return stored;
  });
}

std::int64_t DeadLetterRepository::count() const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return tx.exec1("SELECT count(*) FROM pm_dead_letters")[0].as<std::int64_t>();
  });
}

}  // namespace pm

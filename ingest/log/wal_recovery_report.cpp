#include "ingest/log/wal_recovery_report.h"

namespace pm::wal {

const char* to_string(RecoveryFinding::Kind kind) {
  switch (kind) {
    case RecoveryFinding::Kind::TornTailCut: return "torn_tail_cut";
    case RecoveryFinding::Kind::TemporaryRemoved: return "temporary_removed";
    case RecoveryFinding::Kind::AppliedSegmentRemoved: return "applied_segment_removed";
    case RecoveryFinding::Kind::StateCreated: return "state_created";
  }
  return "unknown";
}

std::string describe(const RecoveryFinding& f) {
  switch (f.kind) {
    case RecoveryFinding::Kind::TornTailCut:
      return "cut a torn tail of " + std::to_string(f.bytes) + " bytes off " + f.file + " at offset " +
             std::to_string(f.offset) + " (" + f.detail +
             "): the last group written, whose fdatasync never returned, so none of it was acknowledged "
             "(unless the storage lost data it had confirmed as flushed)";
    case RecoveryFinding::Kind::TemporaryRemoved:
      return "removed " + f.file + ": a segment whose creation never finished (it held no records)";
    case RecoveryFinding::Kind::AppliedSegmentRemoved:
      return "removed " + f.file + ": " + f.detail;
    case RecoveryFinding::Kind::StateCreated:
      return "created " + f.file + ": " + f.detail;
  }
  return f.detail;
}

}  // namespace pm::wal

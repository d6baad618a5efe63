#pragma once
// What recovery found and did, reported through one callback (LevelDB's log::Reader::Reporter):
// the log at start-up, and the operator tools, describe the same findings the same way. The daemon
// logs each one and counts it (pm_ingest_wal_recovery_*).
#include <cstdint>
#include <string>

namespace pm::wal {

struct RecoveryFinding {
  enum class Kind {
    TornTailCut,            // the last group was incomplete or damaged: `bytes` cut at `offset`
    TemporaryRemoved,       // a segment whose creation never finished (no records)
    AppliedSegmentRemoved,  // a segment below the applied position that a crash left behind
    StateCreated,           // the local state file was missing (older log, or a crash at creation)
  };
  Kind kind;
  std::string file;
  std::uint64_t offset = 0;
  std::uint64_t bytes = 0;
  std::string detail;  // the reason, in words
};

const char* to_string(RecoveryFinding::Kind kind);
// One line for logs and tools: what was found, where, and what it means.
std::string describe(const RecoveryFinding& finding);

}  // namespace pm::wal

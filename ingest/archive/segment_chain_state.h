#pragma once
// SegmentChain's internals (segment_chain.h), shared by chain_discovery.cpp (discover) and
// segment_chain.cpp (reading). Not part of the public API.
#include <deque>
#include <exception>
#include <memory>
#include <optional>
#include <string>

#include "ingest/archive/memory_log_fs.h"
#include "ingest/archive/segment_chain.h"

namespace pm::archive {

// Where a ChainSegment comes from, beyond what the public struct says.
struct ChainSource {
  bool newest_live = false;    // the newest segment of its live directory: a torn tail is no damage
  bool limited = false;        // of a live directory in use by a daemon: read up to live_limit
  std::string fallback;        // an archive copy of a live segment ("" when none was found)
  bool last_known = false;     // last_lsn from an archive header
  std::uint64_t last_lsn = 0;
  // The wal::WalNewerFormat its header threw (a newer format: no damage), rethrown when reading
  // reaches it, skip_damaged or not; null otherwise.
  std::exception_ptr newer_format;
};

// The segment being read: its bytes in a MemoryLogFs, read by WalReader, or after damage (with
// skip_damaged) the records salvage_log() found in it.
struct LoadedSegment {
  MemoryLogFs fs;
  std::string dir;  // the directory its file has in `fs` (an archive file's path, or the live dir)
  std::unique_ptr<wal::WalReader> reader;
  wal::Position limit;
  bool salvaging = false;
  std::deque<wal::Record> salvaged;
  std::uint64_t salvaged_last = 0;  // lsn salvage reached (0: none)
};

// The bound of live directory `dir` when a process holds its log (its state file's ceiling), else
// nullopt. In chain_discovery.cpp.
std::optional<LiveLimit> live_limit_of(wal::LogFs& fs, const std::string& dir);
// Keeps in `kept` the stricter of it and `found`: one whose state could not be read, else the lower.
void keep_stricter(std::optional<LiveLimit>& kept, const LiveLimit& found);

struct SegmentChain::State {
  wal::LogFs* fs = nullptr;
  wal::LogId log_id{};
  std::vector<ChainSegment> segments;
  std::vector<ChainSource> sources;
  std::vector<std::string> dirs;  // as given: where an archive copy made after discovery is looked for
  std::optional<LiveLimit> live_limit;
  bool stopped_at_live_limit = false;
  // Reading (start()).
  std::uint64_t from_lsn = 0;
  bool skip_damaged = false;
  std::function<void(const SkippedRange&)> on_skip;
  std::size_t next_index = 0;  // the segment to load next
  std::size_t current_index = 0;
  std::unique_ptr<LoadedSegment> current;
  bool have_last = false;      // whether last_lsn is known: the lsn the chain has reached
  std::uint64_t last_lsn = 0;
  std::uint64_t bytes_done = 0;
};

}  // namespace pm::archive

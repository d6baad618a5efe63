// SegmentChain::discover() and the chain's listing (segment_chain.h).
#include <algorithm>
#include <map>
#include <optional>

#include "ingest/archive/archive_file_io.h"
#include "ingest/archive/archive_reader.h"
#include "ingest/archive/segment_chain_state.h"
#include "ingest/log/wal_corruption.h"
#include "ingest/log/wal_directory.h"
#include "ingest/log/wal_newer_format.h"
#include "ingest/log/wal_state.h"

namespace pm::archive {

namespace {

struct Candidate {
  ChainSegment segment;
  ChainSource source;
  std::optional<wal::LogId> log_id;  // when its header is readable
};

std::uint64_t file_size(wal::LogFs& fs, const std::string& path) {
  std::unique_ptr<wal::LogFile> file;
  std::uint64_t size = 0;
  if (fs.open(path, wal::OpenMode::Read, file) || file->size(size)) return 0;
  return size;
}

Candidate archive_candidate(wal::LogFs& fs, const std::string& path, std::uint64_t segment) {
  Candidate c;
  c.segment = ChainSegment{segment, path, true, 0, file_size(fs, path), 0, ""};
  ArchiveEntry e;
  try {
    if (!read_archive_header(fs, path, e, c.segment.problem)) return c;
  } catch (const wal::WalNewerFormat&) {
    c.source.newer_format = std::current_exception();
    return c;
  }
  if (e.segment != segment) {
    c.segment.problem = "header names segment " + std::to_string(e.segment);
    return c;
  }
  c.segment.first_lsn = e.first_lsn;
  c.segment.events = e.events();
  c.source.last_known = true;
  c.source.last_lsn = e.last_lsn;
  c.log_id = e.log_id;
  return c;
}

Candidate live_candidate(wal::LogFs& fs, const std::string& dir, std::uint64_t segment, bool newest) {
  Candidate c;
  const std::string path = wal::segment_path(dir, segment);
  c.segment = ChainSegment{segment, path, false, 0, file_size(fs, path), 0, ""};
  c.source.newest_live = newest;
  try {
    const wal::SegmentHeader h = wal::read_segment_header(fs, dir, segment);
    c.segment.first_lsn = h.first_lsn;
    c.log_id = h.log_id;
  } catch (const wal::WalNewerFormat&) {  // not damage: never skipped
    c.source.newer_format = std::current_exception();
  } catch (const wal::WalCorruption& e) {
    // Refused access is no damage: neither stopped at as damage nor skipped by --skip-damaged.
    if (e.unreadable()) throw ChainError(std::string(e.what()) + " (run as root or as the daemon's user)");
    c.segment.problem = e.problem();
  } catch (const std::exception& e) {  // a read failing (EIO): damage to skip or stop at, named
    c.segment.problem = std::string("cannot read its header: ") + e.what();
  }
  return c;
}

std::vector<Candidate> candidates_in(wal::LogFs& fs, const std::string& dir) {
  std::vector<std::string> names;
  if (const std::error_code ec = fs.list(dir, names)) throw ChainError("cannot list " + dir + ": " + ec.message());
  std::vector<Candidate> out;
  std::vector<std::uint64_t> live;
  for (const std::string& name : names) {
    std::uint64_t segment = 0;
    if (parse_archive_file_name(name, segment)) out.push_back(archive_candidate(fs, path_in_dir(dir, name), segment));
    if (wal::parse_segment_file_name(name, segment)) live.push_back(segment);
  }
  std::sort(live.begin(), live.end());
  for (const std::uint64_t segment : live) out.push_back(live_candidate(fs, dir, segment, segment == live.back()));
  return out;
}

// Whether `c` should be read instead of `kept`: a readable header first, then the live file.
bool better(const Candidate& c, const Candidate& kept) {
  if (c.log_id.has_value() != kept.log_id.has_value()) return c.log_id.has_value();
  return !c.segment.archived && kept.segment.archived;
}

// Chooses one candidate per segment; an archive copy of a live segment is kept as its fallback.
void merge(std::map<std::uint64_t, Candidate>& chosen, Candidate c) {
  auto [it, inserted] = chosen.try_emplace(c.segment.segment, c);
  if (inserted) return;
  Candidate& kept = it->second;
  const bool replace = better(c, kept);
  Candidate& live = replace ? c : kept;
  const Candidate& other = replace ? kept : c;
  if (!live.segment.archived && other.segment.archived && other.log_id) live.source.fallback = other.segment.path;
  if (replace) kept = std::move(c);
}

void check_log_id(std::optional<std::pair<wal::LogId, std::string>>& first, const Candidate& c) {
  if (!c.log_id) return;
  if (!first) {
    first.emplace(*c.log_id, c.segment.path);
  } else if (*c.log_id != first->first) {
    throw ChainError(c.segment.path + " belongs to log " + wal::log_id_hex(*c.log_id) + ", but " + first->second +
                     " to log " + wal::log_id_hex(first->first) + ": one chain reads one log");
  }
}

// `dirs` with those holding live segments first. A daemon removes a live segment only once it is
// archived, so a segment missing from a live directory listed first is in an archive listed after
// it; listed the other way round, a segment archived and removed between the two listings was in
// neither, and the replay stopped on it as a gap (with --skip-damaged, left it out for good).
std::vector<std::string> live_directories_first(wal::LogFs& fs, const std::vector<std::string>& dirs) {
  std::vector<std::string> live, others;
  for (const std::string& dir : dirs) {
    std::vector<std::string> names;
    std::uint64_t segment = 0;
    const bool has_live = !fs.list(dir, names) && std::any_of(names.begin(), names.end(), [&](const std::string& name) {
      return wal::parse_segment_file_name(name, segment);
    });
    (has_live ? live : others).push_back(dir);
  }
  live.insert(live.end(), others.begin(), others.end());
  return live;
}

// Nothing found could be read: a file of a newer format says why (as reading would), else ChainError.
[[noreturn]] void refuse_all_unreadable(const std::map<std::uint64_t, Candidate>& chosen) {
  for (const auto& [segment, c] : chosen)
    if (c.source.newer_format) std::rethrow_exception(c.source.newer_format);
  throw ChainError("no readable log segment or archive file found in the directories given");
}

}  // namespace

std::optional<LiveLimit> live_limit_of(wal::LogFs& fs, const std::string& dir) {
  if (!fs.lock_in_use(path_in_dir(dir, wal::kLockFileName))) return std::nullopt;
  wal::LocalState state;
  try {
    if (wal::read_state(fs, path_in_dir(dir, wal::kStateFileName), state) == wal::StateRead::Valid)
      return LiveLimit{dir, state.ceiling.lsn, true};
  } catch (const std::system_error&) {
  }
  return LiveLimit{dir, 0, false};
}

void keep_stricter(std::optional<LiveLimit>& kept, const LiveLimit& found) {
  if (!kept || !found.state_read || (kept->state_read && found.lsn < kept->lsn)) kept = found;
}

SegmentChain SegmentChain::discover(wal::LogFs& fs, const std::vector<std::string>& dirs) {
  std::map<std::uint64_t, Candidate> chosen;
  std::optional<std::pair<wal::LogId, std::string>> first;
  std::optional<LiveLimit> limit;
  for (const std::string& dir : live_directories_first(fs, dirs)) {
    std::vector<Candidate> found = candidates_in(fs, dir);
    const bool live = std::any_of(found.begin(), found.end(), [](const Candidate& c) { return !c.segment.archived; });
    std::optional<LiveLimit> in_use = live ? live_limit_of(fs, dir) : std::nullopt;
    for (Candidate& c : found) {
      check_log_id(first, c);
      c.source.limited = in_use && !c.segment.archived;
      merge(chosen, std::move(c));
    }
    if (in_use) keep_stricter(limit, *in_use);
  }
  if (!first) refuse_all_unreadable(chosen);
  auto state = std::make_unique<State>();
  state->fs = &fs;
  state->log_id = first->first;
  state->dirs = dirs;
  state->live_limit = limit;
  for (auto& [segment, c] : chosen) {
    state->segments.push_back(std::move(c.segment));
    state->sources.push_back(std::move(c.source));
  }
  return SegmentChain(std::move(state));
}

SegmentChain::SegmentChain(std::unique_ptr<State> state) : state_(std::move(state)) {}
SegmentChain::SegmentChain(SegmentChain&&) noexcept = default;
SegmentChain::~SegmentChain() = default;

const wal::LogId& SegmentChain::log_id() const { return state_->log_id; }
const std::vector<ChainSegment>& SegmentChain::segments() const { return state_->segments; }

std::vector<std::pair<std::uint64_t, std::uint64_t>> SegmentChain::gaps() const {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  const std::vector<ChainSegment>& s = state_->segments;
  for (std::size_t i = 1; i < s.size(); ++i)
    if (s[i].segment != s[i - 1].segment + 1) out.emplace_back(s[i - 1].segment + 1, s[i].segment - 1);
  return out;
}

const std::optional<LiveLimit>& SegmentChain::live_limit() const { return state_->live_limit; }
bool SegmentChain::stopped_at_live_limit() const { return state_->stopped_at_live_limit; }

std::uint64_t SegmentChain::bytes_done() const { return state_->bytes_done; }

std::uint64_t SegmentChain::total_bytes() const {
  std::uint64_t total = 0;
  for (const ChainSegment& s : state_->segments) total += s.bytes;
  return total;
}

}  // namespace pm::archive

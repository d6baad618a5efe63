// SegmentChain: reading (segment_chain.h). Discovery is in chain_discovery.cpp.
#include "ingest/archive/segment_chain.h"

#include <algorithm>

#include "ingest/archive/archive_file_io.h"
#include "ingest/archive/archive_reader.h"
#include "ingest/archive/segment_chain_state.h"
#include "ingest/log/wal_corruption.h"
#include "ingest/log/wal_directory.h"
#include "ingest/log/wal_newer_format.h"
#include "ingest/log/wal_salvage.h"
#include "ingest/log/wal_scan.h"

namespace pm::archive {

namespace {

using State = SegmentChain::State;

[[noreturn]] void fail(const ChainSegment& seg, const std::string& problem) {
  if (seg.archived) throw ArchiveDamage(seg.path, 0, problem);
  throw wal::WalCorruption(seg.path, 0, problem);
}

// The lsn just before segment `i + 1` when its header was readable (0: unknown).
std::uint64_t lsn_before_next(const State& s, std::size_t i) {
  if (i + 1 >= s.segments.size() || s.segments[i + 1].first_lsn == 0) return 0;
  return s.segments[i + 1].first_lsn - 1;
}

// Ranges wholly before where reading starts are not reported; ranges without LSNs always are.
void report(State& s, const SkippedRange& range) {
  if (range.last_lsn >= range.first_lsn && range.last_lsn < s.from_lsn) return;
  if (s.on_skip) s.on_skip(range);
}

// Segment `i` cannot be read at all: throws, or (skip_damaged) reports its LSN range, from its
// archive header when readable, else from its neighbours.
void skip_whole(State& s, std::size_t i, const std::string& problem) {
  const ChainSegment& seg = s.segments[i];
  if (!s.skip_damaged) fail(seg, problem);
  const ChainSource& src = s.sources[i];
  // first_lsn 0: where it starts is unknown (a damaged first segment); last_lsn < first_lsn: no
  // LSN can be named.
  SkippedRange range{s.have_last ? s.last_lsn + 1 : seg.first_lsn, 0, seg.path, problem};
  const std::uint64_t before_next = lsn_before_next(s, i);
  const bool known = src.last_known || before_next != 0;
  range.last_lsn = src.last_known ? src.last_lsn : before_next;
  if (!known) range = SkippedRange{1, 0, seg.path, problem};
  report(s, range);
  s.have_last = known;
  s.last_lsn = range.last_lsn;
}

// Another copy of segment `i`, for when its file could not be read (gone since discovery: the
// daemon archived and deleted a live segment, or retention removed an archive file): the archive
// copy of a live segment discovery saw, else an archive file of the same segment of the same log
// that a source directory holds now ("" when none).
std::string another_copy(const State& s, std::size_t i) {
  const ChainSegment& seg = s.segments[i];
  // A copy of this segment of this log, by its header (not its name alone): its log id, segment
  // number and, when discovery read it, first LSN.
  const auto same_segment = [&](const std::string& path) {
    std::string problem;
    ArchiveEntry entry;
    return read_archive_header(*s.fs, path, entry, problem) && entry.log_id == s.log_id && entry.segment == seg.segment &&
           (seg.first_lsn == 0 || entry.first_lsn == seg.first_lsn);
  };
  if (const std::string& fallback = s.sources[i].fallback; !fallback.empty() && same_segment(fallback)) return fallback;
  for (const std::string& dir : s.dirs) {
    const std::string path = path_in_dir(dir, archive_file_name(seg.segment));
    if (path != seg.path && path != s.sources[i].fallback && same_segment(path)) return path;
  }
  return "";
}

// What reading a segment file removed since the replay began says, and what to do.
std::string removed_since_discovery(const ChainSegment& seg) {
  return "segment " + wal::segment_file_name(seg.segment) + " (" + seg.path +
         ") was removed since the replay began (a running pm-ingestd archives and then deletes its applied live "
         "segments, and its archive retention removes the oldest archive files), and no source holds another copy of "
         "it. Give the daemon's --archive-dir as a --source too, so that replay reads the copies it archives, and run "
         "again (it resumes at its checkpoint). Reading " +
         seg.path;
}

// The newest segment of a log no process holds, as the storage holds it, the way the daemon's
// recovery reads it (WriteAheadLog::read_from_storage): synced, then its clean cached pages
// dropped. A daemon whose group's fdatasync failed exits (70) and frees its log before it is
// restarted; Linux keeps that group's pages cached and marked clean though the storage never got
// them, and the restarted daemon's recovery cuts the group and gives its LSNs to new events.
std::error_code read_as_stored(wal::LogFs& fs, const std::string& path, std::string& out) {
  std::unique_ptr<wal::LogFile> file;
  if (std::error_code ec = fs.open(path, wal::OpenMode::Read, file)) return ec;
  // A sync that fails leaves nothing to store: a file system that cannot sync (read-only, or a
  // squashfs backup) holds no unsynced write, and after a failed write-back (EIO) Linux has
  // marked the pages clean, so the drop below makes them read as the storage holds them.
  (void)file->sync();
  if (std::error_code ec = file->drop_clean_pages()) return ec;
  file.reset();
  return read_whole_file(fs, path, out);
}

// Reads segment `i` from its own file; the error when the file cannot be read (damage in an
// archive file throws ArchiveDamage).
std::error_code read_own_file(State& s, std::size_t i, std::string& out) {
  const ChainSegment& seg = s.segments[i];
  if (seg.archived) {
    try {
      out = read_archive(*s.fs, seg.path).segment_bytes;
      return {};
    } catch (const std::system_error& e) {
      return e.code();
    }
  }
  const bool newest_of_a_free_log = s.sources[i].newest_live && !s.sources[i].limited;
  return newest_of_a_free_log ? read_as_stored(*s.fs, seg.path, out) : read_whole_file(*s.fs, seg.path, out);
}

// The segment's bytes; false (after skip_whole) when they cannot be had.
bool segment_bytes(State& s, std::size_t i, std::string& out) {
  const ChainSegment& seg = s.segments[i];
  try {
    const std::error_code ec = read_own_file(s, i, out);
    if (!ec) return true;
    if (const std::string copy = another_copy(s, i); !copy.empty()) {
      out = read_archive(*s.fs, copy).segment_bytes;  // archived and deleted meanwhile, or a second archive's copy
      return true;
    }
    if (ec == std::errc::no_such_file_or_directory) throw std::system_error(ec, removed_since_discovery(seg));
    throw std::system_error(ec, "read " + seg.path);
  } catch (const ArchiveDamage& e) {
    if (!s.skip_damaged) throw;
    skip_whole(s, i, e.problem());
  } catch (const std::system_error& e) {
    if (!s.skip_damaged || wal::refused_access(e.code())) throw;  // refused access is not damage to skip
    skip_whole(s, i, e.what());
  }
  return false;
}

// The newest segment of a live log may end in a group being written (or torn by a crash), or in
// the zeros of a segment started from a spare file: its bytes are cut at the valid end then. Damage before a
// later valid group is kept, for the reader.
void cut_torn_tail(LoadedSegment& loaded, const std::string& path, std::string& bytes) {
  loaded.fs.put(path, bytes);
  const wal::SegmentScan scan = wal::scan_segment(loaded.fs, path);
  if (scan.tail != wal::TailState::Corrupt && scan.valid_end.offset < bytes.size())
    bytes.resize(static_cast<std::size_t>(scan.valid_end.offset));
}

// A daemon may have started on a live directory since discover(): its newest segment may then end
// in groups not synced yet.
void limit_if_now_in_use(State& s, std::size_t i) {
  const std::string& path = s.segments[i].path;
  const std::optional<LiveLimit> now = live_limit_of(*s.fs, path.substr(0, path.rfind('/')));
  if (!now) return;
  s.sources[i].limited = true;
  keep_stricter(s.live_limit, *now);
}

// The first lsn of the loaded segment must follow the chain; a break throws or is reported.
void check_continuity(State& s, std::size_t i, std::uint64_t first_lsn) {
  if (!s.have_last || first_lsn == s.last_lsn + 1) return;
  const ChainSegment& seg = s.segments[i];
  std::string problem = "segment starts at lsn " + std::to_string(first_lsn) + " where " + std::to_string(s.last_lsn + 1) +
                        " was expected";
  if (i > 0 && s.segments[i - 1].segment + 1 != seg.segment)
    problem += " (segments " + std::to_string(s.segments[i - 1].segment + 1) + ".." + std::to_string(seg.segment - 1) + " missing)";
  if (!s.skip_damaged) throw ArchiveDamage(seg.path, 0, problem);
  report(s, SkippedRange{s.last_lsn + 1, first_lsn - 1, seg.path, problem});
  s.last_lsn = std::max(s.last_lsn, first_lsn - 1);  // overlapping LSNs: those read already are dropped
}

// Loads segment `i` for reading; false when it was skipped whole.
bool load(State& s, std::size_t i) {
  s.bytes_done += s.segments[i].bytes;
  const ChainSegment& seg = s.segments[i];
  if (s.sources[i].newer_format) std::rethrow_exception(s.sources[i].newer_format);  // no damage: never skipped
  if (!seg.problem.empty()) {
    skip_whole(s, i, seg.problem);
    return false;
  }
  // The lock is looked at before the newest segment is read (a daemon writing it that exits
  // before the read ends) and after (one that started meanwhile).
  const bool unlimited_newest = s.sources[i].newest_live && !s.sources[i].limited;
  if (unlimited_newest) limit_if_now_in_use(s, i);
  std::string bytes;
  if (!segment_bytes(s, i, bytes)) return false;
  if (unlimited_newest && !s.sources[i].limited) limit_if_now_in_use(s, i);
  auto loaded = std::make_unique<LoadedSegment>();
  loaded->dir = seg.archived ? seg.path : seg.path.substr(0, seg.path.rfind('/'));
  const std::string path = wal::segment_path(loaded->dir, seg.segment);
  wal::throw_if_newer_segment(seg.path, bytes.data(), bytes.size());  // no damage: never skipped
  wal::SegmentHeader h;
  if (!wal::decode_segment_header(bytes.data(), bytes.size(), h)) {
    skip_whole(s, i, "invalid segment header");
    return false;
  }
  if (s.sources[i].newest_live) cut_torn_tail(*loaded, path, bytes);
  check_continuity(s, i, h.first_lsn);
  const std::uint64_t size = bytes.size();
  loaded->fs.put(path, std::move(bytes));
  loaded->reader = std::make_unique<wal::WalReader>(loaded->dir, s.log_id, wal::first_position(h), loaded->fs);
  loaded->limit = wal::Position{seg.segment, size, 0, UINT64_MAX};
  s.current = std::move(loaded);
  s.current_index = i;
  return true;
}

SkippedRange skipped_of(const wal::SkippedRange& r, std::uint64_t before_next) {
  SkippedRange out{r.last_lsn_before + 1, 0, r.file, r.problem};
  out.last_lsn = r.next_lsn_after != 0 ? r.next_lsn_after - 1 : before_next != 0 ? before_next : out.first_lsn - 1;
  out.problem += " (bytes " + std::to_string(r.from_offset) + ".." + std::to_string(r.to_offset) + " skipped)";
  return out;
}

// Damage inside the loaded segment: salvage_log() (wal_salvage.h) reads what it can of it; records
// up to the chain's last lsn were returned already.
void start_salvage(State& s) {
  LoadedSegment& cur = *s.current;
  cur.salvaging = true;
  cur.reader.reset();
  const std::uint64_t floor = s.have_last ? s.last_lsn : 0;
  const std::uint64_t before_next = lsn_before_next(s, s.current_index);
  // A record or skipped lsn that the next segment's header says is its own is superseded (the tail
  // of a group cut after a failed write, brought back by a power loss): the next segment's record
  // of that lsn is the one that was acknowledged, so neither is handed out nor counted as read.
  const auto on_record = [&](const wal::Record& r) {
    if (before_next != 0 && r.lsn > before_next) return true;
    if (r.lsn > floor) cur.salvaged.push_back(r);
    cur.salvaged_last = std::max(cur.salvaged_last, r.lsn);
    return true;
  };
  const auto on_skip = [&](const wal::SkippedRange& r) {
    SkippedRange range = skipped_of(r, before_next);
    if (before_next != 0 && range.last_lsn >= range.first_lsn) {
      if (range.first_lsn > before_next) return;
      range.last_lsn = std::min(range.last_lsn, before_next);
    }
    if (range.last_lsn >= range.first_lsn) cur.salvaged_last = std::max(cur.salvaged_last, range.last_lsn);
    report(s, range);
  };
  wal::salvage_log(cur.fs, cur.dir, on_record, on_skip);
}

std::optional<wal::Record> read_current(State& s) {
  LoadedSegment& cur = *s.current;
  if (!cur.salvaging) {
    try {
      return cur.reader->next(cur.limit);
    } catch (const wal::WalCorruption&) {
      if (!s.skip_damaged) throw;
      start_salvage(s);
    }
  }
  if (cur.salvaged.empty()) return std::nullopt;
  wal::Record r = std::move(cur.salvaged.front());
  cur.salvaged.pop_front();
  return r;
}

// The loaded segment is read to its end: the chain has reached its last lsn.
void finish(State& s) {
  const LoadedSegment& cur = *s.current;
  if (!cur.salvaging) {
    s.last_lsn = cur.reader->position().lsn;
    s.have_last = true;
  } else if (cur.salvaged_last != 0) {
    s.last_lsn = std::max(s.have_last ? s.last_lsn : 0, cur.salvaged_last);
    s.have_last = true;
  }
  s.current.reset();
}

// Whether bytes of the loaded segment, or segments, are left past the reader's position.
bool more_to_read(const State& s) {
  return s.current->reader->position().offset < s.current->limit.offset || s.next_index < s.segments.size();
}

// Record `lsn` of a running daemon's live log past what it had synced ends the chain.
bool past_live_limit(State& s, std::uint64_t lsn) {
  if (!s.live_limit || !s.sources[s.current_index].limited) return false;
  if (s.live_limit->state_read && lsn <= s.live_limit->lsn) return false;
  s.stopped_at_live_limit = true;
  s.current.reset();
  s.next_index = s.segments.size();
  return true;
}

}  // namespace

std::string describe(const SkippedRange& r) {
  const std::string lsns =
      r.last_lsn < r.first_lsn ? "lsn unknown" : "lsn " + std::to_string(r.first_lsn) + ".." + std::to_string(r.last_lsn);
  return lsns + " in " + r.file + ": " + r.problem;
}

void SegmentChain::start(std::uint64_t from_lsn, bool skip_damaged, std::function<void(const SkippedRange&)> on_skip) {
  State& s = *state_;
  s.from_lsn = from_lsn;
  s.skip_damaged = skip_damaged;
  s.on_skip = std::move(on_skip);
  s.current.reset();
  s.have_last = false;
  s.last_lsn = 0;
  s.bytes_done = 0;
  s.stopped_at_live_limit = false;
  s.next_index = 0;
  for (std::size_t i = 0; i < s.segments.size(); ++i)
    if (s.segments[i].problem.empty() && s.segments[i].first_lsn != 0 && s.segments[i].first_lsn <= from_lsn) s.next_index = i;
  for (std::size_t i = 0; i < s.next_index; ++i) s.bytes_done += s.segments[i].bytes;
}

std::optional<wal::Record> SegmentChain::next() {
  State& s = *state_;
  for (;;) {
    if (!s.current) {
      if (s.next_index >= s.segments.size()) return std::nullopt;
      load(s, s.next_index++);
      continue;
    }
    // Checked before reading too: past the limit a group may still be half written, and the
    // reader would call it damage before returning the record the check below stops at.
    if (!s.current->salvaging && more_to_read(s) && past_live_limit(s, s.current->reader->position().lsn + 1))
      return std::nullopt;
    std::optional<wal::Record> r = read_current(s);
    if (!r) {
      finish(s);
      continue;
    }
    if (s.have_last && r->lsn <= s.last_lsn) continue;  // salvage found what was read already
    if (past_live_limit(s, r->lsn)) return std::nullopt;
    s.have_last = true;
    s.last_lsn = r->lsn;
    if (r->lsn >= s.from_lsn) return r;
  }
}

}  // namespace pm::archive

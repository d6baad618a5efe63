#include "ingest/archive/damaged_segment.h"

#include <fmt/format.h>

#include "ingest/archive/archive_index.h"
#include "ingest/archive/archive_writer.h"
#include "ingest/archive/segment_summary.h"
#include "ingest/log/wal_corruption.h"
#include "ingest/log/wal_directory.h"
#include "ingest/log/wal_newer_format.h"
#include "ingest/log/wal_state.h"

namespace pm::archive {

namespace {

// What archive_segment() would refuse the segment for; refuses a segment it would take.
std::string damage_of(wal::LogFs& fs, const std::string& wal_dir, std::uint64_t segment) {
  try {
    summarize_segment(fs, wal_dir, segment);
  } catch (const wal::WalCorruption& e) {
    if (e.segment_missing()) throw DamagedSegmentRefused(e.what());
    return e.what();
  }
  throw DamagedSegmentRefused(fmt::format("{} is not damaged: every record checks out, so the daemon archives it itself; "
                                          "nothing to do here",
                                          wal::segment_path(wal_dir, segment)));
}

// The segment's header; refuses a segment that is not there, or whose header cannot be read.
wal::SegmentHeader readable_header(wal::LogFs& fs, const std::string& wal_dir, std::uint64_t segment) {
  try {
    return wal::read_segment_header(fs, wal_dir, segment);
  } catch (const std::exception& e) {
    if (wal::is_newer_format(e)) throw;  // not damage: the build that wrote it reads it
    if (wal::is_segment_missing(e))
      throw DamagedSegmentRefused(fmt::format("there is no {} in {}", wal::segment_file_name(segment), wal_dir));
    if (wal::is_unreadable(e))
      throw DamagedSegmentRefused(fmt::format("{}: nothing is known about damage; run this as root or as the daemon's user, "
                                              "and change nothing in the log directory until the segment reads",
                                              e.what()));
    throw DamagedSegmentRefused(fmt::format("the segment's own header cannot be read ({}), so no archive file can name its "
                                            "log and LSNs; keep a copy of it, then remove it from the log directory with the "
                                            "daemon stopped",
                                            e.what()));
  }
}

// The segment must be the oldest in the log (the daemon archives oldest first: the one it stopped on),
// not the newest (still appended to; a torn tail there is cut at the next start), and applied.
void check_log(wal::LogFs& fs, const std::string& wal_dir, const wal::SegmentHeader& header) {
  const std::uint64_t segment = header.segment;
  const wal::DirectoryListing listing = wal::list_log_dir(fs, wal_dir);
  const std::string name = wal::segment_file_name(segment);
  if (listing.segments.empty() || listing.segments.front() != segment)
    throw DamagedSegmentRefused(fmt::format("{} is not the oldest segment in {}{}: the daemon archives segments oldest first, "
                                            "so the one it stops on is the oldest",
                                            name, wal_dir,
                                            listing.segments.empty() ? "" : " (" + wal::segment_file_name(listing.segments.front()) + " is)"));
  if (listing.segments.back() == segment)
    throw DamagedSegmentRefused(fmt::format("{} is the newest segment in {}, which the daemon appends to: a damaged end there "
                                            "is a torn tail that its next start cuts (or refuses, naming it), not a segment "
                                            "to archive",
                                            name, wal_dir));
  wal::LocalState state;
  if (wal::read_state(fs, wal::path_in(wal_dir, wal::kStateFileName), state) != wal::StateRead::Valid)
    throw DamagedSegmentRefused("the log's state file in " + wal_dir + " cannot be read, so whether " + name +
                                " is applied is unknown");
  if (state.log_id != header.log_id)
    throw DamagedSegmentRefused(fmt::format("{} is of log {}, the state file of {} of log {}", name, wal::log_id_hex(header.log_id),
                                            wal_dir, wal::log_id_hex(state.log_id)));
  if (state.applied.segment <= segment)
    throw DamagedSegmentRefused(fmt::format("{} is not wholly applied (the log's applied position is in {}): its events may "
                                            "still have to reach PostgreSQL, and only the live log holds them",
                                            name, wal::segment_file_name(state.applied.segment)));
}

// The archive must be this log's and must not hold the segment or a later one yet.
void check_archive(wal::LogFs& fs, const std::string& archive_dir, const wal::SegmentHeader& header) {
  const ArchiveIndex index = ArchiveIndex::read(fs, archive_dir);
  for (const ArchiveEntry& e : index.entries()) {
    if (e.log_id != header.log_id)
      throw DamagedSegmentRefused(fmt::format("the archive directory {} holds log {} ({}), the segment is of log {}", archive_dir,
                                              wal::log_id_hex(e.log_id), archive_file_name(e.segment),
                                              wal::log_id_hex(header.log_id)));
    if (e.segment >= header.segment)
      throw DamagedSegmentRefused(fmt::format("the archive already holds {}{}", archive_file_name(e.segment),
                                              e.segment == header.segment ? "" : ", a later segment"));
  }
}

// The header's fields from what the salvage can read, and the next segment's first lsn.
SegmentSummary salvage_summary(wal::LogFs& fs, const std::string& wal_dir, const wal::SegmentHeader& header,
                               std::vector<wal::SkippedRange>& skipped) {
  SegmentSummary s;
  s.header = header;
  s.first_lsn = header.first_lsn;
  s.last_lsn = header.first_lsn - 1;
  std::unique_ptr<wal::LogFile> file;
  if (const std::error_code ec = fs.open(wal::segment_path(wal_dir, header.segment), wal::OpenMode::Read, file); ec || file->size(s.file_bytes))
    throw std::system_error(ec ? ec : std::make_error_code(std::errc::io_error), "read " + wal::segment_path(wal_dir, header.segment));
  std::optional<wal::SegmentHeader> next;
  try {
    next = wal::read_segment_header(fs, wal_dir, header.segment + 1);
  } catch (const std::exception&) {
    // No next segment (or an unreadable one): the last readable record's lsn stands.
  }
  std::uint64_t last_lsn = 0;
  wal::SalvageCounts counts;
  wal::salvage_segment(
      fs, wal_dir, header.segment, last_lsn, counts, [&](const wal::Record& r) {
        add_event(s, r);
        return true;
      },
      [&](const wal::SkippedRange& range) { skipped.push_back(range); }, next);
  if (counts.removed_segments > 0)  // gone since its header was read: nothing of it to store
    throw wal::WalCorruption(wal::segment_path(wal_dir, header.segment), 0, std::string(wal::kSegmentMissing) + " (removed while it was read)");
  if (next && next->log_id == header.log_id && next->first_lsn > s.last_lsn) s.last_lsn = next->first_lsn - 1;
  return s;
}

}  // namespace

StoredDamagedSegment store_damaged_segment(wal::LogFs& fs, const std::string& wal_dir, std::uint64_t segment,
                                          const std::string& archive_dir, int level) {
  StoredDamagedSegment out;
  const wal::SegmentHeader header = readable_header(fs, wal_dir, segment);
  check_log(fs, wal_dir, header);
  out.damage = damage_of(fs, wal_dir, segment);
  check_archive(fs, archive_dir, header);
  const SegmentSummary summary = salvage_summary(fs, wal_dir, header, out.skipped);
  out.entry = write_archive_file(fs, wal_dir, summary, archive_dir, level);
  ArchiveIndex::load(fs, archive_dir);  // lists the new file (the headers are the truth)
  return out;
}

}  // namespace pm::archive

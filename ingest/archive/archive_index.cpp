#include "ingest/archive/archive_index.h"

#include <simdjson.h>

#include <algorithm>
#include <optional>
#include <system_error>

#include "ingest/archive/archive_breaks.h"
#include "ingest/archive/archive_file_io.h"
#include "ingest/archive/archive_reader.h"
#include "ingest/archive/archive_writer.h"

namespace pm::archive {

namespace {

void number(std::string& out, const char* name, std::uint64_t v) { out += ",\"" + std::string(name) + "\":" + std::to_string(v); }
void number(std::string& out, const char* name, std::int64_t v) { out += ",\"" + std::string(name) + "\":" + std::to_string(v); }

std::string render_line(const ArchiveEntry& e) {
  std::string out = "{\"segment\":" + std::to_string(e.segment) + ",\"log_id\":\"" + wal::log_id_hex(e.log_id) + "\"";
  number(out, "segment_version", std::uint64_t{e.segment_version});
  number(out, "first_lsn", e.first_lsn);
  number(out, "last_lsn", e.last_lsn);
  number(out, "base_offset", e.base_offset);
  number(out, "segment_bytes", e.segment_bytes);
  number(out, "file_bytes", e.file_bytes);
  number(out, "first_arrival_ms", e.first_arrival_ms);
  number(out, "last_arrival_ms", e.last_arrival_ms);
  number(out, "trades", e.trades);
  number(out, "triggers", e.triggers);
  number(out, "archived_at_ms", e.archived_at_ms);
  return out + ",\"file\":\"" + archive_file_name(e.segment) + "\"}\n";  // file names need no escaping
}

bool parse_log_id(std::string_view hex, wal::LogId& out) {
  if (hex.size() != 2 * out.size()) return false;
  for (std::size_t i = 0; i < hex.size(); ++i) {
    const char c = hex[i];
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    out[i / 2] = static_cast<unsigned char>(i % 2 == 0 ? d << 4 : out[i / 2] | d);
  }
  return true;
}

template <class T>
bool field(simdjson::dom::object obj, const char* name, T& out) {
  return obj[name].get(out) == simdjson::SUCCESS;
}

bool parse_line(simdjson::dom::parser& parser, const std::string& line, ArchiveEntry& e) {
  simdjson::dom::object obj;
  if (parser.parse(line).get(obj) != simdjson::SUCCESS) return false;
  std::string_view log_id, file;
  std::uint64_t version = 0;
  const bool ok = field(obj, "segment", e.segment) && field(obj, "log_id", log_id) && parse_log_id(log_id, e.log_id) &&
                  field(obj, "segment_version", version) && field(obj, "first_lsn", e.first_lsn) &&
                  field(obj, "last_lsn", e.last_lsn) && field(obj, "base_offset", e.base_offset) &&
                  field(obj, "segment_bytes", e.segment_bytes) && field(obj, "file_bytes", e.file_bytes) &&
                  field(obj, "first_arrival_ms", e.first_arrival_ms) && field(obj, "last_arrival_ms", e.last_arrival_ms) &&
                  field(obj, "trades", e.trades) && field(obj, "triggers", e.triggers) &&
                  field(obj, "archived_at_ms", e.archived_at_ms) && field(obj, "file", file);
  e.segment_version = static_cast<std::uint32_t>(version);
  return ok && version <= UINT32_MAX && file == archive_file_name(e.segment);
}

enum class IndexRead { Missing, Damaged, Valid };

IndexRead read_index(wal::LogFs& fs, const std::string& path, std::vector<ArchiveEntry>& out, std::string& problem) {
  std::string text;
  if (const std::error_code ec = read_whole_file(fs, path, text)) {
    problem = "cannot read: " + ec.message();
    return ec == std::errc::no_such_file_or_directory ? IndexRead::Missing : IndexRead::Damaged;
  }
  simdjson::dom::parser parser;
  std::size_t line_no = 0;
  for (std::size_t at = 0; at < text.size(); ++line_no) {
    const std::size_t end = text.find('\n', at);
    if (end == std::string::npos) {
      problem = "last line is not complete";
      return IndexRead::Damaged;
    }
    ArchiveEntry e;
    if (!parse_line(parser, text.substr(at, end - at), e)) {
      problem = "line " + std::to_string(line_no + 1) + " is not a valid entry";
      return IndexRead::Damaged;
    }
    out.push_back(e);
    at = end + 1;
  }
  return IndexRead::Valid;
}

// The entries the archive files' headers state, ascending; damaged files are reported. `present`
// (if given) gets the segment of every archive file there, damaged ones included.
std::vector<ArchiveEntry> entries_from_files(wal::LogFs& fs, const std::string& dir, const ArchiveIndex::DamageReport& damaged,
                                             std::vector<std::uint64_t>* present = nullptr) {
  std::vector<std::string> names;
  if (const std::error_code ec = fs.list(dir, names)) throw std::system_error(ec, "list " + dir);
  std::vector<ArchiveEntry> out;
  for (const std::string& name : names) {
    std::uint64_t segment = 0;
    if (!parse_archive_file_name(name, segment)) continue;
    if (present) present->push_back(segment);
    const std::string path = path_in_dir(dir, name);
    ArchiveEntry e;
    std::string problem;
    if (read_archive_header(fs, path, e, problem) && e.segment != segment) problem = "header names segment " + std::to_string(e.segment);
    if (problem.empty()) {
      out.push_back(e);
    } else if (damaged) {
      damaged(path, problem);
    }
  }
  std::sort(out.begin(), out.end(), [](const ArchiveEntry& a, const ArchiveEntry& b) { return a.segment < b.segment; });
  return out;
}

// The listed entries whose file is gone, then each break between the files (archive_breaks.h)
// that holds none of them: the index saved next no longer lists those entries, so from the next
// load on their gap is found as a break alone, and reported at every load until it is mended.
void report_losses(const std::string& dir, const std::vector<ArchiveEntry>& lost, const std::vector<ArchiveEntry>& files,
                   const std::vector<std::uint64_t>& present, const ArchiveIndex::DamageReport& damaged) {
  for (const ArchiveEntry& e : lost) damaged(path_in_dir(dir, archive_file_name(e.segment)), lost_entry_problem(e));
  for (const ArchiveBreak& b : archive_breaks(files, present)) {
    const bool named = std::any_of(lost.begin(), lost.end(), [&](const ArchiveEntry& e) {
      return b.first_missing <= e.segment && e.segment <= b.last_missing;
    });
    if (!named) damaged(path_in_dir(dir, archive_file_name(b.reported_segment)), b.problem);
  }
}

}  // namespace

std::vector<ArchiveEntry> lost_entries(const std::vector<ArchiveEntry>& listed, const std::vector<std::uint64_t>& present,
                                       RetentionWindow window) {
  const auto is_present = [&](const ArchiveEntry& e) { return std::find(present.begin(), present.end(), e.segment) != present.end(); };
  if (window == RetentionWindow::OneFile) {
    std::vector<ArchiveEntry> lost;
    for (std::size_t i = 1; i < listed.size(); ++i)
      if (!is_present(listed[i])) lost.push_back(listed[i]);
    return lost;
  }
  // The oldest listed entry whose file is there: a damaged file is never listed (nor taken by
  // retention), so it must not count as an older file still there.
  std::optional<std::uint64_t> oldest_kept;
  for (const ArchiveEntry& e : listed)
    if (is_present(e) && (!oldest_kept || e.segment < *oldest_kept)) oldest_kept = e.segment;
  std::vector<ArchiveEntry> lost;
  if (!oldest_kept) return lost;
  for (const ArchiveEntry& e : listed)
    if (e.segment > *oldest_kept && !is_present(e)) lost.push_back(e);
  return lost;
}

std::string lost_entry_problem(const ArchiveEntry& entry) {
  return "missing: " + std::string(kIndexFileName) + " lists it (lsn " + std::to_string(entry.first_lsn) + ".." +
         std::to_string(entry.last_lsn) + ") while older archive files are still there; no archive file holds those events now";
}

ArchiveIndex ArchiveIndex::load(wal::LogFs& fs, const std::string& archive_dir, const DamageReport& damaged) {
  if (const std::error_code ec = fs.create_dir(archive_dir)) throw ArchiveWriteError(ec, "create directory " + archive_dir);
  ArchiveIndex index(fs, archive_dir);
  std::vector<std::uint64_t> present;
  const std::vector<ArchiveEntry> from_files = entries_from_files(fs, archive_dir, damaged, &present);
  const std::string path = path_in_dir(archive_dir, kIndexFileName);
  std::vector<ArchiveEntry> listed;
  std::string problem;
  const IndexRead read = read_index(fs, path, listed, problem);
  if (read == IndexRead::Damaged && damaged) damaged(path, problem + "; rebuilt from the archive files");
  if (damaged) report_losses(archive_dir, lost_entries(listed, present, RetentionWindow::OneFile), from_files, present, damaged);
  if (read != IndexRead::Valid || listed != from_files) index.save(from_files);
  index.entries_ = from_files;
  return index;
}

ArchiveIndex ArchiveIndex::read(wal::LogFs& fs, const std::string& archive_dir, const DamageReport& damaged, bool* index_stale,
                                std::vector<ArchiveEntry>* lost, RetentionWindow window) {
  ArchiveIndex index(fs, archive_dir);
  // The index before the files: a daemon writes a file, then lists it, so every entry read here has
  // its file in the listing that follows unless it is gone (a segment archived in between would
  // otherwise be listed in the index and missing from the files read before it).
  std::vector<ArchiveEntry> listed;
  std::string problem;
  const IndexRead read = index_stale || lost ? read_index(fs, path_in_dir(archive_dir, kIndexFileName), listed, problem)
                                             : IndexRead::Missing;
  std::vector<std::uint64_t> present;
  index.entries_ = entries_from_files(fs, archive_dir, damaged, &present);
  if (index_stale) *index_stale = read != IndexRead::Valid || listed != index.entries_;
  if (lost) *lost = lost_entries(listed, present, window);
  return index;
}

std::uint64_t ArchiveIndex::total_file_bytes() const {
  std::uint64_t total = 0;
  for (const ArchiveEntry& e : entries_) total += e.file_bytes;
  return total;
}

void ArchiveIndex::add(const ArchiveEntry& entry) {
  std::vector<ArchiveEntry> next = entries_;
  const auto at = std::lower_bound(next.begin(), next.end(), entry.segment,
                                   [](const ArchiveEntry& e, std::uint64_t segment) { return e.segment < segment; });
  if (at != next.end() && at->segment == entry.segment)
    *at = entry;  // archived again: the entry of the file written now
  else
    next.insert(at, entry);
  save(next);
  entries_ = std::move(next);
}

void ArchiveIndex::remove(std::uint64_t segment) {
  std::vector<ArchiveEntry> next = entries_;
  std::erase_if(next, [&](const ArchiveEntry& e) { return e.segment == segment; });
  if (next.size() == entries_.size()) return;
  save(next);
  entries_ = std::move(next);
}

std::string ArchiveIndex::render(const std::vector<ArchiveEntry>& entries) {
  std::string out;
  for (const ArchiveEntry& e : entries) out += render_line(e);
  return out;
}

void ArchiveIndex::save(const std::vector<ArchiveEntry>& entries) {
  write_file_atomically(*fs_, dir_, kIndexFileName, render(entries));
}

}  // namespace pm::archive

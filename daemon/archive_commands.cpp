#include "daemon/archive_commands.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <system_error>

#include <fmt/format.h>

#include "daemon/cli_common.h"
#include "daemon/replay_progress.h"
#include "ingest/archive/archive_index.h"
#include "ingest/archive/damaged_segment.h"
#include "ingest/archive/segment_archiver.h"
#include "ingest/archive/archive_reader.h"
#include "ingest/log/wal_corruption.h"
#include "ingest/log/wal_directory.h"
#include "ingest/log/wal_newer_format.h"
#include "ingest/replay/replay_runner.h"
#include "repos/util/clock.h"

namespace pm::ctl {

namespace {

std::int64_t parse_until(const std::string& text) {
  const auto t = parse_iso(text);
  if (!t) throw UsageError("--until: '" + text + "' is not an RFC 3339 time (e.g. 2026-11-30T04:00:00Z)");
  return std::chrono::duration_cast<std::chrono::milliseconds>(t->time_since_epoch()).count();
}

std::string iso_of_ms(std::int64_t ms) {
  return ms == 0 ? "-" : format_iso_ms(ms);
}

ReplayOptions replay_options(const ReplayCommand& c) {
  ReplayOptions o;
  o.sources = c.sources;
  o.instance_id = c.instance_id;
  o.from_lsn = std::max<std::uint64_t>(c.from_lsn, 1);
  o.to_lsn = c.to_lsn;
  if (c.until) o.until_ms = parse_until(*c.until);
  o.skip_damaged = c.skip_damaged;
  o.batch_max_events = c.batch_max_events;
  o.connections = c.connections;
  o.trade_timestamp_unit = c.trade_timestamp_unit;
  return o;
}

void print_summary(const ReplayCommand& c, const ReplayStats& s) {
  std::cout << (c.database ? "replayed" : "dry run (nothing written):") << " log " << s.log_id;
  if (c.database) std::cout << " into " << redact_url(c.database->url) << " as instance '" << c.instance_id << "'";
  std::cout << "\n";
  if (s.resumed_after_lsn > 0) std::cout << "resumed after lsn " << s.resumed_after_lsn << " (its checkpoint)\n";
  std::cout << fmt::format("events read {}, {} {} (trades {}", s.read, c.database ? "applied" : "to apply", s.applied, s.trades);
  if (c.database) std::cout << fmt::format(": {} new, {} already stored", s.trades_inserted, s.trades - s.trades_inserted - s.trades_unseen);
  if (s.trades_unseen > 0) std::cout << fmt::format(", {} committed with their reply lost (new or not: unknown)", s.trades_unseen);
  std::cout << fmt::format("; triggers {}", s.triggers);
  if (c.database) std::cout << fmt::format(": {} first, {} duplicates", s.triggers_recorded, s.triggers - s.triggers_recorded - s.triggers_unseen);
  if (s.triggers_unseen > 0) std::cout << fmt::format(", {} committed with their reply lost (first or not: unknown)", s.triggers_unseen);
  std::cout << fmt::format("), dead-lettered {}, arrived at or after --until {}\n", s.dead_lettered, s.after_until);
  if (s.applied > 0) std::cout << fmt::format("lsn {}..{}", s.first_lsn, s.last_lsn);
  std::cout << fmt::format("{}in {:.1f} s ({:.0f} events/s)\n", s.applied > 0 ? ", " : "", s.seconds,
                           s.seconds > 0 ? static_cast<double>(s.read) / s.seconds : 0.0);
  for (const auto& r : s.skipped)
    std::cout << "SKIPPED (damaged): " << archive::describe(r) << "\n";
  for (const auto& text : s.skipped_earlier)
    std::cout << "SKIPPED (damaged) by an earlier run of this instance: " << text << "\n";
  if (const auto& held = s.held_back; held && held->state_read) {
    std::cout << fmt::format("stopped after lsn {}: the log in {} is in use by a running pm-ingestd, and that is as far as its "
                             "state file says it had synced; the later events are left for the next run\n",
                             held->lsn, held->dir);
  } else if (held) {
    std::cout << fmt::format("stopped after lsn {}: a running pm-ingestd holds the log in {} and its state file cannot be "
                             "read, so what it has synced is unknown; run again once it is stopped\n",
                             held->lsn, held->dir);
  }
}

}  // namespace

std::string default_replay_instance(const ReplayCommand& c) {
  std::string id = "replay";
  if (c.from_lsn > 1) id += " from=" + std::to_string(c.from_lsn);
  if (c.to_lsn != UINT64_MAX) id += " to=" + std::to_string(c.to_lsn);
  if (c.until) id += " until=" + *c.until;
  // A skip moves the checkpoint past events never applied: a run without --skip-damaged (the file
  // restored) must not resume behind them. Its exit 0 hid the skipped range.
  if (c.skip_damaged) id += " skip-damaged";
  return id;
}

int run_replay(const ReplayCommand& c) {
  ReplayProgress progress(std::cerr, ::isatty(STDERR_FILENO) == 1);
  ReplayRunner runner(replay_options(c), [&](const ReplayStats& s) { progress.update(s); },
                      [](const archive::SkippedRange& r) {
                        std::cerr << "\nskipping damaged " << archive::describe(r) << "\n";
                      });
  std::optional<Database> db;
  if (c.database) db.emplace(*c.database);
  try {
    const ReplayStats stats = runner.run(db ? &*db : nullptr);
    progress.finish(stats);
    print_summary(c, stats);
    // Stopped where it could not tell what a running daemon had synced: not done, whatever it applied.
    if (stats.held_back && !stats.held_back->state_read) return 1;
    return stats.skipped.empty() && stats.skipped_earlier.empty() ? 0 : 3;
  } catch (const archive::ArchiveDamage& e) {
    std::cerr << "\npm-ingestctl replay: DAMAGED: " << e.what() << "\n(stopped; its checkpoint is where it stopped. "
              << "`pm-ingestctl archive verify` lists every damaged file; --skip-damaged replays past it)\n";
    return 2;
  } catch (const wal::WalCorruption& e) {
    std::cerr << "\npm-ingestctl replay: DAMAGED: " << e.what() << "\n(stopped; --skip-damaged replays past it)\n";
    return 2;
  } catch (const wal::WalNewerFormat& e) {  // not damage: never skipped, not exit 2
    std::cerr << "\npm-ingestctl replay: NEWER FORMAT: " << e.what() << "\n(stopped, --skip-damaged or not: nothing is "
              << "damaged, but this build cannot read it; replay from there with the pm-ingestctl of the version that wrote it)\n";
    return 1;
  }
}

}  // namespace pm::ctl

namespace pm::ctl {

namespace {

// The archive files of `dir` in segment order.
std::vector<std::uint64_t> archived_segments(const std::string& dir) {
  std::vector<std::string> names;
  if (const std::error_code ec = wal::posix_log_fs().list(dir, names)) throw std::system_error(ec, "cannot list " + dir);
  std::vector<std::uint64_t> segments;
  for (const auto& name : names) {
    std::uint64_t segment = 0;
    if (archive::parse_archive_file_name(name, segment)) segments.push_back(segment);
  }
  std::sort(segments.begin(), segments.end());
  return segments;
}

// What is wrong between an archived segment and the one before it ("" when they follow each other).
std::string missing_between(std::uint64_t before, std::uint64_t segment) {
  if (segment == before + 1) return "";
  return fmt::format("segments {}..{} are missing", wal::segment_file_name(before + 1), wal::segment_file_name(segment - 1));
}

std::string chain_problem(const archive::ArchiveEntry& before, const archive::ArchiveEntry& e) {
  if (e.log_id != before.log_id) return "belongs to log " + wal::log_id_hex(e.log_id) + ", the one before to " + wal::log_id_hex(before.log_id);
  if (std::string missing = missing_between(before.segment, e.segment); !missing.empty()) return missing;
  if (e.first_lsn != before.last_lsn + 1) return fmt::format("starts at lsn {}, the one before ends at lsn {}", e.first_lsn, before.last_lsn);
  return "";
}

// False, after saying so on `out`, when `dir` holds no archive: the daemon writes index.ndjson as
// soon as it uses a directory, so neither it nor an archive file means another directory (the
// log's, a typo), where "archive ok" or an empty listing would say the opposite of the truth.
bool holds_an_archive(const std::string& dir, const std::vector<std::uint64_t>& segments, std::ostream& out) {
  if (!segments.empty() || std::filesystem::exists(dir + "/index.ndjson")) return true;
  out << "no archive in " << dir << ": no archive files (*.pmarc) and no index.ndjson; give the daemon's --archive-dir\n";
  return false;
}

// The index against the files: each listed entry whose file is gone is printed and counted in
// `damaged`; false (said) when index.ndjson does not match the files. Beside a file of a newer
// format (named already) the index is not judged: true.
bool index_matches(const std::string& dir, std::uint64_t& damaged) {
  bool stale = false;
  std::vector<archive::ArchiveEntry> lost;
  // Beside a running daemon (one there before the read, or started during it) its retention may
  // delete the oldest files after the index was read.
  const std::string lock = dir + "/" + archive::kArchiveLockFileName;
  const bool daemon_before = wal::posix_log_fs().lock_in_use(lock);
  try {
    archive::ArchiveIndex::read(wal::posix_log_fs(), dir, {}, &stale, &lost,
                                daemon_before ? archive::RetentionWindow::AnyOldest : archive::RetentionWindow::OneFile);
    if (!daemon_before && wal::posix_log_fs().lock_in_use(lock))
      archive::ArchiveIndex::read(wal::posix_log_fs(), dir, {}, &stale, &lost, archive::RetentionWindow::AnyOldest);
  } catch (const wal::WalNewerFormat&) {
    return true;
  }
  for (const archive::ArchiveEntry& e : lost) {
    std::cout << fmt::format("{}/{} {}\n", dir, archive::archive_file_name(e.segment), archive::lost_entry_problem(e));
    ++damaged;
  }
  if (stale) std::cout << dir << "/index.ndjson does not match the files (the daemon rebuilds it at its next start)\n";
  return !stale;
}

// Whether `path` is there (a file that cannot be opened for another reason counts as there).
bool file_there(wal::LogFs& fs, const std::string& path) {
  std::unique_ptr<wal::LogFile> file;
  return fs.open(path, wal::OpenMode::Read, file) != std::errc::no_such_file_or_directory;
}

// The verdict line's first words.
const char* archive_verdict(std::uint64_t damaged, std::uint64_t newer) {
  return damaged > 0 ? "ARCHIVE DAMAGED" : newer > 0 ? "ARCHIVE HOLDS A NEWER FORMAT" : "archive ok";
}

}  // namespace

int run_archive_list(const std::string& dir, bool json) {
  if (!holds_an_archive(dir, archived_segments(dir), std::cerr)) return 2;  // stdout: the listing (JSON) only
  bool stale = false;
  const archive::ArchiveIndex index = archive::ArchiveIndex::read(wal::posix_log_fs(), dir, [](const std::string& file, const std::string& problem) {
    std::cerr << "damaged (not listed): " << file << ": " << problem << "\n";
  }, &stale);
  if (stale) std::cerr << dir << "/index.ndjson does not match the files; listed from the files' headers\n";
  if (json) {
    std::cout << archive::ArchiveIndex::render(index.entries());
    return 0;
  }
  std::uint64_t events = 0, raw = 0;
  std::cout << fmt::format("{:<22} {:>23} {:<27} {:<27} {:>10} {:>12} {:>12}\n", "file", "lsn", "first arrival", "last arrival",
                           "events", "segment", "archived");
  for (const auto& e : index.entries()) {
    std::cout << fmt::format("{:<22} {:>23} {:<27} {:<27} {:>10} {:>12} {:>12}\n", archive::archive_file_name(e.segment),
                             fmt::format("{}..{}", e.first_lsn, e.last_lsn), iso_of_ms(e.first_arrival_ms),
                             iso_of_ms(e.last_arrival_ms), e.events(), e.segment_bytes, e.file_bytes);
    events += e.events();
    raw += e.segment_bytes;
  }
  std::cout << fmt::format("total: {} segments, {} events, {} bytes of log in {} bytes on disk\n", index.entries().size(), events,
                           raw, index.total_file_bytes());
  return 0;
}

int run_archive_verify(const std::string& dir, wal::LogFs& fs) {
  const std::vector<std::uint64_t> segments = archived_segments(dir);
  if (!holds_an_archive(dir, segments, std::cout)) return 2;
  std::optional<archive::ArchiveEntry> last_verified;  // the chain is judged from it (none: the next is the oldest)
  std::uint64_t verified = 0, damaged = 0, newer = 0, events = 0;
  bool unread_since_last = false;  // a file damaged, or of a newer format, since the last verified one
  std::uint64_t previous_segment = 0;  // the file before, damaged or not
  std::vector<std::uint64_t> before;   // every file listed before this one (since the last front trim)
  for (const std::uint64_t segment : segments) {
    const std::string path = dir + "/" + archive::archive_file_name(segment);
    try {
      const archive::ArchiveEntry e = archive::verify_archive(fs, path);
      // After a file not read (damaged, or of a newer format) only the numbering is judged (that
      // file is the break in lsns), so that files missing after it are reported now, not once it
      // is restored.
      const std::string problem = unread_since_last ? missing_between(previous_segment, segment)
                                  : !last_verified ? ""
                                                   : chain_problem(*last_verified, e);
      unread_since_last = false;
      std::cout << fmt::format("{} ok: lsn {}..{}, {} events{}\n", path, e.first_lsn, e.last_lsn, e.events(),
                               problem.empty() ? "" : "; CHAIN BROKEN: " + problem);
      damaged += problem.empty() ? 0 : 1;
      events += e.events();
      ++verified;
      last_verified = e;
    } catch (const archive::ArchiveDamage& e) {
      std::cout << fmt::format("{} DAMAGED at offset {}: {}\n", e.file(), e.offset(), e.problem());
      ++damaged;
      unread_since_last = true;
    } catch (const wal::WalCorruption& e) {
      std::cout << fmt::format("{} DAMAGED: {}\n", path, e.what());
      ++damaged;
      unread_since_last = true;
    } catch (const wal::WalNewerFormat& e) {  // not damage
      std::cout << fmt::format("{} NEWER FORMAT: {}; verify it with the pm-ingestctl of that version\n", path, e.what());
      ++newer;
      unread_since_last = true;
    } catch (const std::system_error& e) {
      if (e.code() == std::errc::no_such_file_or_directory) {
        // Gone since the listing: a running daemon's retention deletes the oldest files. A file
        // missing from the middle still breaks the chain between its neighbours (judged as if it
        // had never been listed), and a listed one gone, the index check below. When the file
        // and every file listed before it are gone too, retention trimmed the oldest end past
        // them: the next file is judged as the oldest (a front trim is no gap). One of them still
        // there (a damaged file retention leaves, or an older one) makes it a gap.
        std::cout << fmt::format("{} removed since the listing (archive retention of a running daemon?); not read\n", path);
        const bool all_before_gone = !before.empty() && std::none_of(before.begin(), before.end(), [&](std::uint64_t s) {
          return file_there(fs, dir + "/" + archive::archive_file_name(s));
        });
        if (all_before_gone) {
          std::cout << fmt::format("every file listed before it is gone too: the oldest files were removed meanwhile\n");
          last_verified.reset();
          unread_since_last = false;
          previous_segment = 0;
          before.clear();
        } else {
          before.push_back(segment);
        }
        continue;
      }
      std::cout << fmt::format("{} UNREADABLE: {}\n", path, e.what());
      ++damaged;
      unread_since_last = true;
    }
    previous_segment = segment;
    before.push_back(segment);
  }
  const bool index_ok = index_matches(dir, damaged);
  std::cout << fmt::format("{}: {} archived segments, {} events, {} damaged{}{}\n", archive_verdict(damaged, newer),
                           verified, events, damaged, newer == 0 ? "" : fmt::format(", {} of a newer format", newer),
                           index_ok ? "" : ", index stale");
  return damaged > 0 ? 2 : newer > 0 ? 1 : 0;
}

namespace {

std::uint64_t parse_segment_arg(const std::string& text) {
  std::uint64_t segment = 0;
  if (wal::parse_segment_file_name(text, segment)) return segment;
  std::size_t used = 0;
  try {
    segment = std::stoull(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || segment == 0 || text.front() == '-')
    throw UsageError("--segment: '" + text + "' is neither a segment number (1, 2, ...) nor a log segment file name (000000000000000a.wal)");
  return segment;
}

}  // namespace

int run_archive_store_damaged(const std::string& archive_dir, const std::string& wal_dir, const std::string& segment_arg) {
  const std::uint64_t segment = parse_segment_arg(segment_arg);
  wal::LogFs& fs = wal::posix_log_fs();
  // Both held until it returns: no daemon may start on the log (its recovery cuts and removes
  // segments) or archive into the directory meanwhile.
  std::unique_ptr<wal::FileLock> log_lock, archive_lock;
  for (const auto& [path, held] : {std::pair{wal_dir + "/" + wal::kLockFileName, &log_lock},
                                   std::pair{archive_dir + "/" + archive::kArchiveLockFileName, &archive_lock}}) {
    if (const std::error_code ec = fs.lock(path, "pm-ingestctl pid " + std::to_string(::getpid()), *held)) {
      const bool held_by_another = ec == std::errc::resource_unavailable_try_again;
      std::cerr << "pm-ingestctl archive store-damaged: cannot take " << path << " ("
                << (held_by_another ? "held by " + fs.lock_owner(path) + "); stop the daemon first (systemctl stop pm-ingestd)"
                                    : ec.message() + ")")
                << "\n";
      return 1;
    }
  }
  try {
    const archive::StoredDamagedSegment stored = archive::store_damaged_segment(fs, wal_dir, segment, archive_dir);
    const archive::ArchiveEntry& e = stored.entry;
    std::cout << fmt::format("archived the damaged segment {} as it is: {}/{}, lsn {}..{}, {} readable events\n",
                             wal::segment_path(wal_dir, segment), archive_dir, archive::archive_file_name(segment), e.first_lsn,
                             e.last_lsn, e.events());
    std::cout << "damage: " << stored.damage << "\n";
    for (const wal::SkippedRange& r : stored.skipped)
      std::cout << fmt::format("unreadable: bytes {}..{} (after lsn {}{}): {}\n", r.from_offset, r.to_offset, r.last_lsn_before,
                               r.next_lsn_after > 0 ? fmt::format(", before lsn {}", r.next_lsn_after) : "", r.problem);
    std::cout << "The daemon's next start removes it from the live log and archives the segments after it. `archive verify` "
                 "reports this file as damaged, and a replay stops at it unless --skip-damaged, which names the LSNs it skips.\n";
    return 0;
  } catch (const archive::DamagedSegmentRefused& e) {
    std::cerr << "pm-ingestctl archive store-damaged: refused: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace pm::ctl

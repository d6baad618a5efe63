#include "ingest/archive/archive_writer.h"

#include <zstd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>

#include "ingest/archive/archive_file_io.h"
#include "ingest/archive/archive_reader.h"
#include "ingest/archive/segment_summary.h"
#include "ingest/log/wal_corruption.h"
#include "ingest/log/wal_directory.h"
#include "ingest/log/wal_newer_format.h"
#include "repos/util/crc32c.h"

namespace pm::archive {

namespace {

// Reads and writes go in chunks of this size: archiving needs memory of the order of a chunk and
// zstd's window (a few MiB at the default level), whatever the segment's size.
constexpr std::size_t kChunkBytes = 1u << 20;

// The live segment, open for reading; WalCorruption (segment missing) when it is gone (removed
// since it was summarized).
std::unique_ptr<wal::LogFile> open_live_segment(wal::LogFs& fs, const std::string& path) {
  std::unique_ptr<wal::LogFile> file;
  if (const std::error_code ec = fs.open(path, wal::OpenMode::Read, file)) {
    if (ec == std::errc::no_such_file_or_directory) throw wal::WalCorruption(path, 0, wal::kSegmentMissing);
    throw std::system_error(ec, "read " + path);
  }
  return file;
}

ArchiveEntry entry_of(const SegmentSummary& s, std::uint64_t body_bytes) {
  ArchiveEntry e;
  e.log_id = s.header.log_id;
  e.segment = s.header.segment;
  e.segment_version = s.header.version;
  e.first_lsn = s.first_lsn;
  e.last_lsn = s.last_lsn;
  e.base_offset = s.header.base_offset;
  e.segment_bytes = s.file_bytes;
  e.file_bytes = kArchiveHeaderSize + body_bytes + kArchiveTrailerSize;
  e.first_arrival_ms = s.first_arrival_ms;
  e.last_arrival_ms = s.last_arrival_ms;
  e.trades = s.trades;
  e.triggers = s.triggers;
  e.archived_at_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  return e;
}

struct CctxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};

void check_zstd(std::size_t result) {
  if (ZSTD_isError(result))
    throw ArchiveWriteError(std::make_error_code(std::errc::io_error), std::string("zstd compression: ") + ZSTD_getErrorName(result));
}

// Compresses the `size` bytes of `in` (the live segment at `in_path`) as one zstd frame that states
// its content size, written into `out` from kArchiveHeaderSize on; `body_bytes` is its size. A
// failed write is returned (step "write"); a failed or short read of the segment throws.
std::error_code compress_body(wal::LogFile& in, const std::string& in_path, std::uint64_t size, int level, wal::LogFile& out,
                              std::uint64_t& body_bytes, const std::function<bool()>& abandon) {
  const std::unique_ptr<ZSTD_CCtx, CctxFree> cctx(ZSTD_createCCtx());
  if (!cctx) throw std::bad_alloc();
  check_zstd(ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, level));
  check_zstd(ZSTD_CCtx_setPledgedSrcSize(cctx.get(), size));
  std::string input(kChunkBytes, '\0');
  std::string output(ZSTD_CStreamOutSize(), '\0');
  body_bytes = 0;
  for (std::uint64_t read = 0;;) {
    if (abandon && abandon()) throw ArchiveAbandoned("archiving " + in_path + " abandoned after " + std::to_string(read) + " bytes");
    std::size_t got = 0;
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(kChunkBytes, size - read));
    if (want > 0) {
      if (const std::error_code ec = in.read_at(read, input.data(), want, got)) throw std::system_error(ec, "read " + in_path);
      if (got < want) throw std::runtime_error("read " + in_path + ": the segment shrank while it was archived");
      read += got;
    }
    const ZSTD_EndDirective mode = read == size ? ZSTD_e_end : ZSTD_e_continue;
    ZSTD_inBuffer src{input.data(), got, 0};
    for (bool done = false; !done;) {
      ZSTD_outBuffer dst{output.data(), output.size(), 0};
      const std::size_t left = ZSTD_compressStream2(cctx.get(), &dst, &src, mode);
      check_zstd(left);
      if (const std::error_code ec = out.write_at(kArchiveHeaderSize + body_bytes, output.data(), dst.pos)) return ec;
      body_bytes += dst.pos;
      done = mode == ZSTD_e_end ? left == 0 : src.pos == src.size;
    }
    if (mode == ZSTD_e_end) return {};
  }
}

// The masked crc32c of the header and the body already in `file` (read back a chunk at a time).
std::error_code file_checksum(wal::LogFile& file, const std::string& header, std::uint64_t body_bytes, std::uint32_t& out) {
  std::uint32_t crc = crc32c::value(header.data(), header.size());
  std::string chunk(static_cast<std::size_t>(std::min<std::uint64_t>(kChunkBytes, body_bytes)), '\0');
  for (std::uint64_t at = 0; at < body_bytes;) {
    std::size_t got = 0;
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), body_bytes - at));
    if (const std::error_code ec = file.read_at(kArchiveHeaderSize + at, chunk.data(), want, got)) return ec;
    if (got < want) return std::make_error_code(std::errc::io_error);
    crc = crc32c::extend(crc, chunk.data(), got);
    at += got;
  }
  out = crc32c::mask(crc);
  return {};
}

// Body, then header, then the trailer (archive_format.h) into the `.tmp` file; `entry` is completed
// with the body's size.
std::error_code write_archive(wal::LogFile& live, const std::string& live_path, const SegmentSummary& summary, int level,
                              wal::LogFile& out, ArchiveEntry& entry, const char*& step, const std::function<bool()>& abandon) {
  std::uint64_t body_bytes = 0;
  if (std::error_code ec = compress_body(live, live_path, summary.file_bytes, level, out, body_bytes, abandon)) return ec;
  entry = entry_of(summary, body_bytes);
  const std::string header = encode_archive_header(entry);
  if (std::error_code ec = out.write_at(0, header.data(), header.size())) return ec;
  std::uint32_t crc = 0;
  step = "read back";
  if (std::error_code ec = file_checksum(out, header, body_bytes, crc)) return ec;
  step = "write";
  char trailer[kArchiveTrailerSize];
  std::memcpy(trailer, &crc, 4);
  std::memcpy(trailer + 4, kTrailerMagic, sizeof kTrailerMagic);
  return out.write_at(kArchiveHeaderSize + body_bytes, trailer, sizeof trailer);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

ArchiveEntry archive_segment(wal::LogFs& fs, const std::string& wal_dir, std::uint64_t segment,
                             const std::string& archive_dir, int level, const std::function<bool()>& abandon) {
  // Damage, or a segment that is gone (segment_missing()), throws before anything is written.
  const SegmentSummary summary = summarize_segment(fs, wal_dir, segment);
  return write_archive_file(fs, wal_dir, summary, archive_dir, level, abandon);
}

ArchiveEntry write_archive_file(wal::LogFs& fs, const std::string& wal_dir, const SegmentSummary& summary,
                                const std::string& archive_dir, int level, const std::function<bool()>& abandon) {
  const std::uint64_t segment = summary.header.segment;
  const std::string live_path = wal::segment_path(wal_dir, segment);
  const std::unique_ptr<wal::LogFile> live = open_live_segment(fs, live_path);
  if (const std::error_code ec = fs.create_dir(archive_dir)) throw ArchiveWriteError(ec, "create directory " + archive_dir);
  ArchiveEntry entry;
  write_file_atomically(fs, archive_dir, archive_file_name(segment), [&](wal::LogFile& out, const char*& step) {
    return write_archive(*live, live_path, summary, level, out, entry, step, abandon);
  });
  return entry;
}

bool is_archived(wal::LogFs& fs, const std::string& archive_dir, const wal::LogId& log_id, std::uint64_t segment) {
  ArchiveEntry entry;
  std::string problem;
  try {
    return read_archive_header(fs, path_in_dir(archive_dir, archive_file_name(segment)), entry, problem) &&
           entry.log_id == log_id && entry.segment == segment;
  } catch (const wal::WalNewerFormat&) {
    return false;
  }
}

void remove_partial_archives(wal::LogFs& fs, const std::string& archive_dir) {
  std::vector<std::string> names;
  if (const std::error_code ec = fs.list(archive_dir, names)) {
    if (ec == std::errc::no_such_file_or_directory) return;
    throw ArchiveWriteError(ec, "list " + archive_dir);
  }
  bool removed = false;
  for (const std::string& name : names) {
    if (!ends_with(name, ".tmp")) continue;
    const std::string path = path_in_dir(archive_dir, name);
    if (const std::error_code ec = fs.remove(path)) throw ArchiveWriteError(ec, "remove " + path);
    removed = true;
  }
  if (!removed) return;
  if (const std::error_code ec = fs.sync_dir(archive_dir)) throw ArchiveWriteError(ec, "fsync directory " + archive_dir);
}

}  // namespace pm::archive

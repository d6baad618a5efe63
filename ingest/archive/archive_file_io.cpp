#include "ingest/archive/archive_file_io.h"

#include "ingest/archive/archive_writer.h"

namespace pm::archive {

std::string path_in_dir(const std::string& dir, const std::string& name) { return dir + "/" + name; }

std::error_code read_whole_file(wal::LogFs& fs, const std::string& path, std::string& out) {
  std::unique_ptr<wal::LogFile> file;
  if (std::error_code ec = fs.open(path, wal::OpenMode::Read, file)) return ec;
  std::uint64_t size = 0;
  if (std::error_code ec = file->size(size)) return ec;
  out.resize(static_cast<std::size_t>(size));
  std::size_t got = 0;
  if (std::error_code ec = file->read_at(0, out.data(), out.size(), got)) return ec;
  out.resize(got);  // a file that shrank meanwhile: what was there
  return {};
}

namespace {

// Creates `tmp`, fills it and syncs it; the first failure's code and step.
std::error_code write_synced(wal::LogFs& fs, const std::string& tmp, const FileFiller& fill, const char*& step) {
  std::unique_ptr<wal::LogFile> file;
  step = "create";
  if (std::error_code ec = fs.open(tmp, wal::OpenMode::CreateTruncate, file)) return ec;
  step = "write";
  if (std::error_code ec = fill(*file, step)) return ec;
  step = "fsync";
  return file->sync();
}

}  // namespace

void write_file_atomically(wal::LogFs& fs, const std::string& dir, const std::string& name, const std::string& bytes) {
  write_file_atomically(fs, dir, name, [&](wal::LogFile& file, const char*&) { return file.write_at(0, bytes.data(), bytes.size()); });
}

void write_file_atomically(wal::LogFs& fs, const std::string& dir, const std::string& name, const FileFiller& fill) {
  const std::string path = path_in_dir(dir, name);
  const std::string tmp = path + ".tmp";
  const char* step = "";
  std::error_code ec;
  try {
    ec = write_synced(fs, tmp, fill, step);
  } catch (...) {
    fs.remove(tmp);  // best effort, as below
    throw;
  }
  if (!ec) {
    step = "rename";
    ec = fs.rename(tmp, path);
  }
  if (ec) {
    fs.remove(tmp);  // best effort: a leftover is removed by remove_partial_archives()
    throw ArchiveWriteError(ec, std::string(step) + " " + (step == std::string("rename") ? path : tmp));
  }
  if (std::error_code dir_ec = fs.sync_dir(dir)) throw ArchiveWriteError(dir_ec, "fsync directory " + dir);
}

}  // namespace pm::archive

#pragma once
// Whole-file reads and atomic whole-file writes through a LogFs, for archive files and the index.
// Stateless; any thread.
#include <functional>
#include <string>
#include <system_error>

#include "ingest/log/log_fs.h"

namespace pm::archive {

// Reads the file at `path` whole into `out`.
std::error_code read_whole_file(wal::LogFs& fs, const std::string& path, std::string& out);

// Writes `bytes` as `<dir>/<name>`: `<name>.tmp` created, written, fsynced, closed, renamed to
// `<name>`, then `dir` fsynced. When it returns the file survives a power loss. Throws
// ArchiveWriteError ("<step> <path>") when a step fails; the `.tmp` file is then removed (best
// effort). A failed directory fsync leaves the renamed file in place (its bytes are synced; only
// its name may not survive a power loss).
void write_file_atomically(wal::LogFs& fs, const std::string& dir, const std::string& name, const std::string& bytes);

// The same, the bytes written by `fill` into the open `.tmp` file, which it may also read back. It
// returns the first failed call's error code and names its step ("write", "read") in `step`, or
// throws (e.g. when what it copies from fails: the exception passes on). Either way the `.tmp` file
// is removed.
using FileFiller = std::function<std::error_code(wal::LogFile& file, const char*& step)>;
void write_file_atomically(wal::LogFs& fs, const std::string& dir, const std::string& name, const FileFiller& fill);

std::string path_in_dir(const std::string& dir, const std::string& name);

}  // namespace pm::archive

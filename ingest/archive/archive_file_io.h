#pragma once
// Whole-file reads and atomic whole-file writes through a LogFs, for archive files and the index.
// Stateless; any thread.
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

std::string path_in_dir(const std::string& dir, const std::string& name);

}  // namespace pm::archive

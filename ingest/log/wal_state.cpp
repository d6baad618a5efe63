#include "ingest/log/wal_state.h"

#include <cstring>

#include "ingest/log/wal_corruption.h"
#include "ingest/log/wal_newer_format.h"
#include "repos/util/crc32c.h"

namespace pm::wal {

namespace {

constexpr char kStateMagic[8] = {'P', 'M', 'W', 'S', 'T', '0', '1', '\n'};
constexpr std::uint32_t kStateFormatVersion = 1;
constexpr std::size_t kSlotBytes = 8 + 8 + 16 + 32 + 32 + 4;

void put64(char*& p, std::uint64_t v) {
  std::memcpy(p, &v, 8);
  p += 8;
}
std::uint64_t get64(const char*& p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  p += 8;
  return v;
}
void put_position(char*& p, const Position& pos) {
  put64(p, pos.segment);
  put64(p, pos.offset);
  put64(p, pos.log_offset);
  put64(p, pos.lsn);
}
Position get_position(const char*& p) {
  Position pos;
  pos.segment = get64(p);
  pos.offset = get64(p);
  pos.log_offset = get64(p);
  pos.lsn = get64(p);
  return pos;
}

std::string encode_slot(const LocalState& s, std::uint64_t sequence) {
  std::string slot(kStateSlotSize, '\0');
  char* p = slot.data();
  std::memcpy(p, kStateMagic, 8);
  p += 8;
  put64(p, sequence);
  std::memcpy(p, s.log_id.data(), 16);
  p += 16;
  put_position(p, s.applied);
  put_position(p, s.ceiling);
  const std::uint32_t crc = crc32c::mask(crc32c::value(slot.data(), kSlotBytes - 4));
  std::memcpy(p, &crc, 4);
  return slot;
}

bool decode_slot(const char* data, std::size_t n, LocalState& out, std::uint64_t& sequence) {
  if (n < kSlotBytes || std::memcmp(data, kStateMagic, 8) != 0) return false;
  std::uint32_t crc;
  std::memcpy(&crc, data + kSlotBytes - 4, 4);
  if (crc32c::unmask(crc) != crc32c::value(data, kSlotBytes - 4)) return false;
  const char* p = data + 8;
  sequence = get64(p);
  std::memcpy(out.log_id.data(), p, 16);
  p += 16;
  out.applied = get_position(p);
  out.ceiling = get_position(p);
  return true;
}

}  // namespace

std::string state_mismatch(StateRead read, const LocalState& state, const LogId& log_id, std::uint64_t end_lsn) {
  if (read == StateRead::Valid && state.log_id != log_id)
    return "the state file belongs to log " + log_id_hex(state.log_id) + ", the segments to log " + log_id_hex(log_id) +
           "; a directory holds one log";
  if (read == StateRead::Damaged && end_lsn > 0)
    return "both copies of the log's state file are damaged (each was synced, so the storage corrupted it). If the "
           "segments are intact, remove the file to start without its check; the checkpoint in PostgreSQL is still "
           "checked against the log";
  return "";
}

StateRead read_state(LogFs& fs, const std::string& path, LocalState& out) {
  std::unique_ptr<LogFile> file;
  if (const std::error_code ec = fs.open(path, OpenMode::Read, file)) {
    if (ec == std::errc::no_such_file_or_directory) return StateRead::Missing;
    throw std::system_error(ec, "open " + path);
  }
  std::string bytes(2 * kStateSlotSize, '\0');
  std::size_t got = 0;
  if (const std::error_code ec = file->read_at(0, bytes.data(), bytes.size(), got)) throw std::system_error(ec, "read " + path);
  for (std::size_t at = 0; at < got; at += kStateSlotSize)
    if (const std::uint32_t version = newer_format_version(bytes.data() + at, got - at, "PMWST", kStateFormatVersion, kSlotBytes - 4))
      throw WalNewerFormat(path, "log state format", version, kStateFormatVersion);
  bool found = false;
  std::uint64_t best = 0;
  for (std::size_t slot = 0; slot < 2; ++slot) {
    const std::size_t at = slot * kStateSlotSize;
    if (got <= at) break;
    LocalState s;
    std::uint64_t sequence = 0;
    if (decode_slot(bytes.data() + at, got - at, s, sequence) && (!found || sequence > best)) {
      out = s;
      best = sequence;
      found = true;
    }
  }
  return found ? StateRead::Valid : StateRead::Damaged;
}

StateFile::StateFile(std::string path, std::unique_ptr<LogFile> file, LocalState current, std::uint64_t sequence)
    : path_(std::move(path)), file_(std::move(file)), current_(current), sequence_(sequence) {}

std::unique_ptr<StateFile> StateFile::create(LogFs& fs, const std::string& path, const LocalState& initial) {
  // Written and synced under a temporary name, then renamed: a crash leaves no state file, or a
  // valid one, never an empty or torn one beside records (which recovery would have to refuse).
  const std::string tmp = path + ".tmp";
  std::unique_ptr<LogFile> file;
  if (const std::error_code ec = fs.open(tmp, OpenMode::CreateTruncate, file)) throw std::system_error(ec, "create " + tmp);
  std::unique_ptr<StateFile> state(new StateFile(path, std::move(file), initial, 0));
  bool sync_failed = false;
  std::error_code ec = state->write(initial, sync_failed);
  if (!ec) ec = fs.rename(tmp, path);
  if (ec) {
    state.reset();
    fs.remove(tmp);
    if (sync_failed) throw WalSyncFailed(ec, "fdatasync of new state file " + tmp);
    throw std::system_error(ec, "write " + path);
  }
  return state;
}

std::unique_ptr<StateFile> StateFile::open(LogFs& fs, const std::string& path, const LocalState& current) {
  std::unique_ptr<LogFile> file;
  if (const std::error_code ec = fs.open(path, OpenMode::Write, file)) throw std::system_error(ec, "open " + path);
  // The sequence of the newest slot is read again, so the next write goes to the other slot.
  std::string bytes(2 * kStateSlotSize, '\0');
  std::size_t got = 0;
  if (const std::error_code ec = file->read_at(0, bytes.data(), bytes.size(), got)) throw std::system_error(ec, "read " + path);
  std::uint64_t newest = 0;
  for (std::size_t slot = 0; slot < 2; ++slot) {
    LocalState s;
    std::uint64_t sequence = 0;
    const std::size_t at = slot * kStateSlotSize;
    if (got > at && decode_slot(bytes.data() + at, got - at, s, sequence)) newest = std::max(newest, sequence);
  }
  return std::unique_ptr<StateFile>(new StateFile(path, std::move(file), current, newest));
}

std::error_code StateFile::write(const LocalState& state, bool& sync_failed) {
  sync_failed = false;
  const std::uint64_t sequence = sequence_ + 1;
  const std::string slot = encode_slot(state, sequence);
  if (const std::error_code ec = file_->write_at((sequence % 2) * kStateSlotSize, slot.data(), slot.size())) return ec;
  if (const std::error_code ec = file_->sync()) {
    sync_failed = true;
    return ec;
  }
  sequence_ = sequence;
  current_ = state;
  return {};
}

}  // namespace pm::wal

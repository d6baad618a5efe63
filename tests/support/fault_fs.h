#pragma once
// FaultFs: an in-memory LogFs (ingest/log/log_fs.h) that simulates what a write-ahead log exists for.
//
// - Power loss: power_loss() (or crash_after() at the n-th mutating call) freezes the file system:
//   every later call fails with EIO, as if the process had died with the machine. What the disk
//   then holds is derived from what was made durable: a file's bytes survive only where its last
//   successful sync() covered them; every other byte is dropped, cut at any byte, zero-filled or
//   filled with garbage, page by page, as the mode says. A name created, renamed or removed since
//   the last sync_dir() of its directory may keep its old state or take the new one, each name on
//   its own. reboot() makes that state current (and the only state: all of it is durable), drops
//   every lock and makes the handles of the "dead" process fail.
// - A truncate is metadata: a truncate (or an OpenMode::CreateTruncate open) that shortens a file
//   and is not followed by a successful sync() of that file may be undone by a power loss, as on a
//   file system that wrote back the file's pages but not the truncate. In every mode but
//   DropUnsynced, the file then comes back (at random, each file on its own) with the bytes the
//   truncates since its last sync cut, after its current ones, and their unsynced part is damaged
//   by the mode's usual rules. (DropUnsynced keeps the file as of its last sync, so a truncate
//   below that sync's length is undone there anyway, and CutAtByte and MixedPages may keep any
//   length between the synced and the current one, as before.)
// - Faults: add_fault() fails the n-th (and following, `times` in all) call of a kind with an
//   errno. A failing write stores its first half first, as a real short write can (unless
//   `stores_part` is off: a process killed before it wrote). A failing sync
//   with `loses_pages` does what Linux does when write-back fails: the unsynced pages are marked
//   clean without being stored. Reads still return them (the page cache) until the file's
//   drop_clean_pages() or a reboot; later syncs do not store them unless they are written again;
//   a power loss loses them whatever its mode.
// Thread-safe (one mutex); deterministic for a seed.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "ingest/log/log_fs.h"

namespace pm::test {

enum class FsOp { Write, Sync, SyncDir, Create, Rename, Remove, Truncate, Read };

struct FaultRule {
  FsOp op;
  std::uint64_t nth = 1;            // the first failing call of this kind, counted from add_fault()
  std::uint64_t times = 1;          // how many calls fail from there; UINT64_MAX: for good
  int error = 5;                    // errno (EIO)
  std::string path_contains;        // only calls on paths containing this ("" = any)
  bool loses_pages = false;         // Sync only: the unsynced pages are lost, though still readable
  bool stores_part = true;          // Write only: the failing write stores its first half first
};

enum class PowerLossMode {
  DropUnsynced,  // every unsynced byte is gone (the file as of its last sync)
  CutAtByte,     // the unsynced tail survives up to a random byte
  ZeroPages,     // unsynced pages survive or read as zeros, each on its own
  GarbagePages,  // unsynced pages survive or hold garbage, each on its own
  MixedPages,    // each unsynced page: new, old, zeros or garbage; the length anywhere between
};
inline constexpr int kPowerLossModes = 5;
const char* to_string(PowerLossMode mode);

class FaultFs final : public wal::LogFs {
 public:
  explicit FaultFs(std::uint64_t seed);
  ~FaultFs() override;

  // LogFs.
  std::error_code create_dir(const std::string& dir) override;
  std::error_code open(const std::string& path, wal::OpenMode mode, std::unique_ptr<wal::LogFile>& out) override;
  std::error_code rename(const std::string& from, const std::string& to) override;
  std::error_code rename_new(const std::string& from, const std::string& to) override;  // as a Rename
  std::error_code remove(const std::string& path) override;
  std::error_code sync_dir(const std::string& dir) override;
  std::error_code list(const std::string& dir, std::vector<std::string>& names) override;
  std::error_code lock(const std::string& path, const std::string& owner, std::unique_ptr<wal::FileLock>& out) override;
  std::string lock_owner(const std::string& path) override;
  bool lock_in_use(const std::string& path) override;

  // Faults.
  void add_fault(const FaultRule& rule);
  void clear_faults();
  // Power loss now, or at the start of the n-th mutating call from now (that call fails).
  void power_loss(PowerLossMode mode);
  void crash_after(std::uint64_t mutating_calls, PowerLossMode mode);
  bool crashed() const;
  void reboot();

  // Inspection and set-up for tests (no faults, no durability rules: the bytes are durable).
  bool exists(const std::string& path) const;
  std::string contents(const std::string& path) const;
  void put(const std::string& path, const std::string& bytes);
  std::vector<std::string> names(const std::string& dir) const;
  std::uint64_t mutating_calls() const;

 private:
  struct Inode;
  class File;
  class Lock;
  std::error_code move_name(const std::string& from, const std::string& to, bool replace);
  // mu_ held; `matched` (if given) is set to the rule that failed the call.
  std::error_code check(FsOp op, const std::string& path, const FaultRule** matched = nullptr);
  std::string damage(const std::string& synced, const std::string& current, PowerLossMode mode);  // mu_ held
  void freeze(PowerLossMode mode);  // mu_ held

  mutable std::mutex mu_;
  std::mt19937_64 rng_;
  std::uint64_t generation_ = 1;  // handles and locks of an older generation belong to a dead process
  std::map<std::string, std::shared_ptr<Inode>> names_;    // path -> file, as the process sees it
  std::map<std::string, std::shared_ptr<Inode>> durable_;  // path -> file, as of the last sync_dir
  std::set<std::string> dirs_;
  std::map<std::string, std::string> locks_;  // path -> owner, this generation
  std::vector<std::pair<FaultRule, std::uint64_t>> rules_;  // rule, calls of its kind seen
  std::uint64_t mutating_ = 0;
  std::uint64_t crash_at_ = 0;  // 0: no crash scheduled
  PowerLossMode crash_mode_ = PowerLossMode::DropUnsynced;
  bool crashed_ = false;
  std::map<std::string, std::shared_ptr<Inode>> after_crash_;  // what reboot() finds
};

}  // namespace pm::test

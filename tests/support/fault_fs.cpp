#include "tests/support/fault_fs.h"

#include <cerrno>
#include <optional>

namespace pm::test {

namespace {
constexpr std::size_t kPage = 4096;
}

const char* to_string(PowerLossMode mode) {
  switch (mode) {
    case PowerLossMode::DropUnsynced: return "drop_unsynced";
    case PowerLossMode::CutAtByte: return "cut_at_byte";
    case PowerLossMode::ZeroPages: return "zero_pages";
    case PowerLossMode::GarbagePages: return "garbage_pages";
    case PowerLossMode::MixedPages: return "mixed_pages";
  }
  return "?";
}

struct FaultFs::Inode {
  std::string data;            // what the process reads (the page cache)
  std::string synced;          // what the disk holds for sure: the data at the last successful sync()
  std::set<std::size_t> lost;  // pages a failed sync marked clean without storing them
  // Set by a truncate that shortened the file, cleared by the next successful sync(): the bytes it
  // cut (the longest such image since that sync), which a power loss may bring back, as a file
  // system that wrote back the pages but not the truncate would.
  std::optional<std::string> untruncated;

  // What the storage holds or will hold after the next sync: the data, except that a lost page
  // keeps the bytes the disk had (zeros past them).
  std::string stored() const {
    std::string out = data;
    for (const std::size_t page : lost)
      for (std::size_t i = page * kPage; i < std::min(out.size(), (page + 1) * kPage); ++i) out[i] = i < synced.size() ? synced[i] : '\0';
    return out;
  }

  // A failed write-back: every page that differs from the disk's is marked clean, unstored.
  void lose_unsynced_pages() {
    for (std::size_t i = 0; i < data.size(); ++i)
      if (i >= synced.size() || data[i] != synced[i]) lost.insert(i / kPage);
  }

  // Pages written again are dirty again: the next sync stores them whole.
  void rewritten(std::uint64_t offset, std::size_t n) {
    if (n == 0) return;
    lost.erase(lost.lower_bound(offset / kPage), lost.upper_bound((offset + n - 1) / kPage));
  }

  void drop_clean_pages() {
    data = stored();
    lost.clear();
  }

  // What the storage may hold if the truncates since the last sync were not stored: the stored
  // bytes, then the cut ones after them.
  std::string stored_untruncated() const {
    std::string out = stored();
    if (untruncated && untruncated->size() > out.size()) out.append(*untruncated, out.size());
    return out;
  }

  // Before the file shrinks to `size` (a truncate, or an open that empties it).
  void shrinking_to(std::size_t size) {
    if (size < data.size()) untruncated = stored_untruncated();
  }
};

class FaultFs::File final : public wal::LogFile {
 public:
  File(FaultFs& fs, std::shared_ptr<Inode> inode, std::string path, std::uint64_t generation)
      : fs_(fs), inode_(std::move(inode)), path_(std::move(path)), generation_(generation) {}

  std::error_code write_at(std::uint64_t offset, const char* data, std::size_t n) override {
    std::lock_guard lock(fs_.mu_);
    if (std::error_code ec = alive()) return ec;
    const FaultRule* rule = nullptr;
    std::error_code ec = fs_.check(FsOp::Write, path_, &rule);
    if (ec && (fs_.crashed_ || (rule != nullptr && !rule->stores_part))) return ec;
    const std::size_t stored = ec ? n / 2 : n;  // a failing write may store a part first
    if (inode_->data.size() < offset + stored) inode_->data.resize(offset + stored, '\0');
    inode_->data.replace(offset, stored, data, stored);
    inode_->rewritten(offset, stored);
    return ec;
  }

  std::error_code read_at(std::uint64_t offset, char* data, std::size_t n, std::size_t& got) override {
    std::lock_guard lock(fs_.mu_);
    got = 0;
    if (std::error_code ec = alive()) return ec;
    if (std::error_code ec = fs_.check(FsOp::Read, path_)) return ec;
    if (offset >= inode_->data.size()) return {};
    got = std::min<std::size_t>(n, inode_->data.size() - offset);
    inode_->data.copy(data, got, offset);
    return {};
  }

  std::error_code sync() override {
    std::lock_guard lock(fs_.mu_);
    if (std::error_code ec = alive()) return ec;
    const FaultRule* rule = nullptr;
    if (std::error_code ec = fs_.check(FsOp::Sync, path_, &rule)) {
      if (rule != nullptr && rule->loses_pages) inode_->lose_unsynced_pages();
      return ec;
    }
    inode_->synced = inode_->stored();
    inode_->untruncated.reset();  // the file's size is stored with its data
    return {};
  }

  std::error_code drop_clean_pages() override {
    std::lock_guard lock(fs_.mu_);
    if (std::error_code ec = alive()) return ec;
    inode_->drop_clean_pages();
    return {};
  }

  std::error_code truncate(std::uint64_t size) override {
    std::lock_guard lock(fs_.mu_);
    if (std::error_code ec = alive()) return ec;
    if (std::error_code ec = fs_.check(FsOp::Truncate, path_)) return ec;
    inode_->shrinking_to(size);
    inode_->data.resize(size, '\0');
    inode_->lost.erase(inode_->lost.lower_bound((size + kPage - 1) / kPage), inode_->lost.end());
    return {};
  }

  std::error_code size(std::uint64_t& out) override {
    std::lock_guard lock(fs_.mu_);
    if (std::error_code ec = alive()) return ec;
    out = inode_->data.size();
    return {};
  }

 private:
  std::error_code alive() const {
    return fs_.crashed_ || generation_ != fs_.generation_ ? wal::errno_code(EIO) : std::error_code{};
  }
  FaultFs& fs_;
  std::shared_ptr<Inode> inode_;
  std::string path_;
  std::uint64_t generation_;
};

class FaultFs::Lock final : public wal::FileLock {
 public:
  Lock(FaultFs& fs, std::string path, std::uint64_t generation) : fs_(fs), path_(std::move(path)), generation_(generation) {}
  ~Lock() override {
    std::lock_guard lock(fs_.mu_);
    if (generation_ == fs_.generation_) fs_.locks_.erase(path_);
  }

 private:
  FaultFs& fs_;
  std::string path_;
  std::uint64_t generation_;
};

FaultFs::FaultFs(std::uint64_t seed) : rng_(seed) {}
FaultFs::~FaultFs() = default;

std::error_code FaultFs::check(FsOp op, const std::string& path, const FaultRule** matched) {
  if (crashed_) return wal::errno_code(EIO);
  if (op != FsOp::Read) {
    ++mutating_;
    if (crash_at_ != 0 && mutating_ >= crash_at_) {
      freeze(crash_mode_);
      return wal::errno_code(EIO);
    }
  }
  for (auto& [rule, seen] : rules_) {
    if (rule.op != op || (!rule.path_contains.empty() && path.find(rule.path_contains) == std::string::npos)) continue;
    ++seen;
    if (seen >= rule.nth && seen - rule.nth < rule.times) {
      if (matched != nullptr) *matched = &rule;
      return wal::errno_code(rule.error);
    }
  }
  return {};
}

std::string FaultFs::damage(const std::string& synced, const std::string& current, PowerLossMode mode) {
  // Only bytes a completed sync did not cover are at risk; the rest survives whatever the mode.
  if (synced == current || mode == PowerLossMode::DropUnsynced) return synced;
  const std::size_t lb = synced.size(), lc = current.size();
  std::size_t d = 0;
  while (d < lb && d < lc && synced[d] == current[d]) ++d;
  auto uniform = [this](std::size_t lo, std::size_t hi) { return std::uniform_int_distribution<std::size_t>(lo, hi)(rng_); };
  if (mode == PowerLossMode::CutAtByte && d == lb && lc > lb) return current.substr(0, uniform(lb, lc));
  const std::size_t length = mode == PowerLossMode::MixedPages || mode == PowerLossMode::CutAtByte
                                 ? uniform(std::min(lb, lc), std::max(lb, lc))
                                 : lc;
  std::string out = synced.substr(0, std::min(d, length));
  for (std::size_t off = out.size(); off < length;) {
    const std::size_t page_end = std::min(length, (off / kPage + 1) * kPage);
    // 0: the new bytes, 1: the old ones, 2: zeros, 3: garbage.
    int source = 0;
    switch (mode) {
      case PowerLossMode::ZeroPages: source = uniform(0, 1) == 0 ? 0 : 2; break;
      case PowerLossMode::GarbagePages: source = uniform(0, 1) == 0 ? 0 : 3; break;
      default: source = static_cast<int>(uniform(0, 3)); break;
    }
    for (std::size_t i = off; i < page_end; ++i) {
      if (i < lb && i < lc && synced[i] == current[i]) {  // a synced byte the process did not change
        out.push_back(synced[i]);
        continue;
      }
      switch (source) {
        case 0: out.push_back(i < lc ? current[i] : '\0'); break;
        case 1: out.push_back(i < lb ? synced[i] : '\0'); break;
        case 2: out.push_back('\0'); break;
        default: out.push_back(static_cast<char>(uniform(0, 255))); break;
      }
    }
    off = page_end;
  }
  return out;
}

void FaultFs::freeze(PowerLossMode mode) {
  crashed_ = true;
  after_crash_.clear();
  std::set<std::string> all;
  for (const auto& [name, inode] : names_) all.insert(name);
  for (const auto& [name, inode] : durable_) all.insert(name);
  std::map<const Inode*, std::shared_ptr<Inode>> rebuilt;
  for (const std::string& name : all) {
    const auto cur = names_.find(name);
    const auto dur = durable_.find(name);
    const std::shared_ptr<Inode> now = cur == names_.end() ? nullptr : cur->second;
    const std::shared_ptr<Inode> before = dur == durable_.end() ? nullptr : dur->second;
    // A name changed since its directory was synced may keep either state, each name on its own.
    std::shared_ptr<Inode> pick = now;
    if (now != before) pick = mode == PowerLossMode::DropUnsynced || (rng_() & 1) ? before : now;
    if (!pick) continue;
    auto& copy = rebuilt[pick.get()];
    if (!copy) {
      copy = std::make_shared<Inode>();
      // A truncate not followed by a sync may not have been stored: the file may come back with
      // the bytes it cut, their unsynced part damaged like any other.
      const bool undo_truncate = pick->untruncated && mode != PowerLossMode::DropUnsynced && (rng_() & 1);
      copy->data = copy->synced = damage(pick->synced, undo_truncate ? pick->stored_untruncated() : pick->stored(), mode);
    }
    after_crash_[name] = copy;
  }
}

std::error_code FaultFs::create_dir(const std::string& dir) {
  std::lock_guard lock(mu_);
  if (crashed_) return wal::errno_code(EIO);
  dirs_.insert(dir);
  return {};
}

std::error_code FaultFs::open(const std::string& path, wal::OpenMode mode, std::unique_ptr<wal::LogFile>& out) {
  std::lock_guard lock(mu_);
  const bool create = mode == wal::OpenMode::CreateTruncate;
  if (std::error_code ec = check(create ? FsOp::Create : FsOp::Read, path)) return ec;
  auto it = names_.find(path);
  if (it == names_.end()) {
    if (!create) return wal::errno_code(ENOENT);
    it = names_.emplace(path, std::make_shared<Inode>()).first;
  } else if (create) {
    it->second->shrinking_to(0);
    it->second->data.clear();
    it->second->lost.clear();
  }
  out = std::make_unique<File>(*this, it->second, path, generation_);
  return {};
}

std::error_code FaultFs::rename(const std::string& from, const std::string& to) { return move_name(from, to, true); }

std::error_code FaultFs::rename_new(const std::string& from, const std::string& to) { return move_name(from, to, false); }

std::error_code FaultFs::move_name(const std::string& from, const std::string& to, bool replace) {
  std::lock_guard lock(mu_);
  if (std::error_code ec = check(FsOp::Rename, to)) return ec;
  const auto it = names_.find(from);
  if (it == names_.end()) return wal::errno_code(ENOENT);
  if (!replace && names_.count(to)) return wal::errno_code(EEXIST);
  names_[to] = it->second;
  names_.erase(from);
  return {};
}

std::error_code FaultFs::remove(const std::string& path) {
  std::lock_guard lock(mu_);
  if (std::error_code ec = check(FsOp::Remove, path)) return ec;
  return names_.erase(path) == 1 ? std::error_code{} : wal::errno_code(ENOENT);
}

std::error_code FaultFs::sync_dir(const std::string& dir) {
  std::lock_guard lock(mu_);
  if (std::error_code ec = check(FsOp::SyncDir, dir)) return ec;
  const std::string prefix = dir + "/";
  for (auto it = durable_.begin(); it != durable_.end();)
    it = it->first.rfind(prefix, 0) == 0 && !names_.count(it->first) ? durable_.erase(it) : std::next(it);
  for (const auto& [name, inode] : names_)
    if (name.rfind(prefix, 0) == 0) durable_[name] = inode;
  return {};
}

std::error_code FaultFs::list(const std::string& dir, std::vector<std::string>& names) {
  std::lock_guard lock(mu_);
  names.clear();
  if (std::error_code ec = check(FsOp::Read, dir)) return ec;
  if (!dirs_.count(dir)) return wal::errno_code(ENOENT);
  const std::string prefix = dir + "/";
  for (const auto& [name, inode] : names_)
    if (name.rfind(prefix, 0) == 0 && name.find('/', prefix.size()) == std::string::npos) names.push_back(name.substr(prefix.size()));
  return {};
}

std::error_code FaultFs::lock(const std::string& path, const std::string& owner, std::unique_ptr<wal::FileLock>& out) {
  std::lock_guard lock(mu_);
  if (crashed_) return wal::errno_code(EIO);
  if (locks_.count(path)) return std::make_error_code(std::errc::resource_unavailable_try_again);
  locks_[path] = owner;
  auto& inode = names_[path];
  if (!inode) inode = std::make_shared<Inode>();
  inode->data = owner + "\n";
  out = std::make_unique<Lock>(*this, path, generation_);
  return {};
}

std::string FaultFs::lock_owner(const std::string& path) {
  std::lock_guard lock(mu_);
  const auto it = locks_.find(path);
  return it == locks_.end() ? "" : it->second;
}

bool FaultFs::lock_in_use(const std::string& path) {
  std::lock_guard lock(mu_);
  return locks_.count(path) > 0;
}

void FaultFs::add_fault(const FaultRule& rule) {
  std::lock_guard lock(mu_);
  rules_.emplace_back(rule, 0);
}

void FaultFs::clear_faults() {
  std::lock_guard lock(mu_);
  rules_.clear();
}

void FaultFs::power_loss(PowerLossMode mode) {
  std::lock_guard lock(mu_);
  if (!crashed_) freeze(mode);
}

void FaultFs::crash_after(std::uint64_t mutating_calls, PowerLossMode mode) {
  std::lock_guard lock(mu_);
  crash_at_ = mutating_ + mutating_calls;
  crash_mode_ = mode;
}

bool FaultFs::crashed() const {
  std::lock_guard lock(mu_);
  return crashed_;
}

void FaultFs::reboot() {
  std::lock_guard lock(mu_);
  if (crashed_) names_ = after_crash_;
  for (const auto& [name, inode] : names_) inode->drop_clean_pages();  // a reboot starts with no page cache
  durable_ = names_;
  after_crash_.clear();
  ++generation_;
  locks_.clear();
  rules_.clear();
  crashed_ = false;
  crash_at_ = 0;
}

bool FaultFs::exists(const std::string& path) const {
  std::lock_guard lock(mu_);
  return names_.count(path) == 1;
}

std::string FaultFs::contents(const std::string& path) const {
  std::lock_guard lock(mu_);
  const auto it = names_.find(path);
  return it == names_.end() ? "" : it->second->data;
}

void FaultFs::put(const std::string& path, const std::string& bytes) {
  std::lock_guard lock(mu_);
  auto& inode = names_[path];
  if (!inode) inode = std::make_shared<Inode>();
  inode->data = inode->synced = bytes;
  inode->lost.clear();
  inode->untruncated.reset();
  durable_[path] = inode;
}

std::vector<std::string> FaultFs::names(const std::string& dir) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  const std::string prefix = dir + "/";
  for (const auto& [name, inode] : names_)
    if (name.rfind(prefix, 0) == 0) out.push_back(name.substr(prefix.size()));
  return out;
}

std::uint64_t FaultFs::mutating_calls() const {
  std::lock_guard lock(mu_);
  return mutating_;
}

}  // namespace pm::test

// pm-log-probe: what an ideal group-committing log achieves on a disk, for comparison with
// pm-ingestd's ack latency. Data "arrives" at a fixed rate in small pieces; one thread writes all
// that is waiting with one write and one fdatasync (a group), like the daemon's log, but with no
// parsing, no sockets and no other work. Each piece's latency is the time from its arrival to the
// end of the fdatasync that made it durable. Run it on the log's disk while PostgreSQL works to
// see how much of the ack tail the disk alone causes.
#include <fcntl.h>
#include <unistd.h>

#include <boost/program_options.hpp>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdint>
#include <condition_variable>
#include <cstring>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace po = boost::program_options;
using Clock = std::chrono::steady_clock;

namespace {

struct ProbeConfig {
  std::string file;
  double seconds = 5;
  double bytes_per_second = 0;
  int arrival_us = 100;
  bool preallocate = false;
  std::string ready_file;  // created when the timed part starts (after any zero fill)
};

struct ProbeResult {
  std::vector<double> latency_ms;  // per arrival
  std::vector<double> sync_ms;     // per group
};

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

bool write_all(int fd, const char* data, std::size_t n, off_t offset) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, data, n, offset);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      if (w == 0) errno = ENOSPC;
      return false;
    }
    data += w;
    n -= static_cast<std::size_t>(w);
    offset += w;
  }
  return true;
}

// Zero-fills the file up front, so that the groups overwrite blocks it owns.
bool preallocate(int fd, std::uint64_t bytes) {
  const std::vector<char> zeros(1 << 20, 0);
  for (std::uint64_t off = 0; off < bytes; off += zeros.size())
    if (!write_all(fd, zeros.data(), zeros.size(), static_cast<off_t>(off))) return false;
  return ::fdatasync(fd) == 0;
}

std::size_t piece_bytes(const ProbeConfig& config) {
  return static_cast<std::size_t>(config.bytes_per_second * config.arrival_us / 1e6);
}

// One probe run on two threads. The calling thread (run()) lets data arrive at the configured
// rate: it appends arrival times to waiting_. The committer thread (commit_loop()) takes all that
// waits as one group, writes it with one pwrite and makes it durable with one fdatasync.
// mu_ guards waiting_ and done_; offset_, buffer_, result_ and failed_ belong to the committer
// thread until run() has joined it. Used once.
class GroupCommitProbe {
 public:
  GroupCommitProbe(const ProbeConfig& config, int fd) : config_(config), fd_(fd), piece_(piece_bytes(config)) {}
  // Throws std::runtime_error when a write or fdatasync failed.
  ProbeResult run() {
    std::thread committer([this] { commit_loop(); });
    arrive();
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_one();
    committer.join();
    if (!failed_.empty()) throw std::runtime_error(failed_);
    return std::move(result_);
  }

 private:
  // Until the configured seconds have passed, or the committer failed.
  void arrive() {
    const auto start = Clock::now();
    const auto stop = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(config_.seconds));
    for (auto due = start; due < stop;) {
      due += std::chrono::microseconds(config_.arrival_us);
      std::this_thread::sleep_until(due);
      {
        std::lock_guard lock(mu_);
        if (done_) break;  // the committer failed
        waiting_.push_back(due);
      }
      cv_.notify_one();
    }
  }

  // The committer thread: groups until done_ and nothing waits, or until a group fails (then it
  // sets done_ itself, which stops the arrivals).
  void commit_loop() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return done_ || !waiting_.empty(); });
      if (waiting_.empty()) return;
      std::vector<Clock::time_point> group(waiting_.begin(), waiting_.end());
      waiting_.clear();
      lock.unlock();
      const bool ok = commit_group(group);
      lock.lock();
      if (!ok) {
        done_ = true;
        return;
      }
    }
  }

  // One write and one fdatasync; records their latencies. false (with failed_ set) on an error.
  bool commit_group(const std::vector<Clock::time_point>& group) {
    buffer_.assign(group.size() * piece_, 'x');
    if (!write_all(fd_, buffer_.data(), buffer_.size(), offset_)) {
      failed_ = std::string("write: ") + std::strerror(errno);
      return false;
    }
    offset_ += static_cast<off_t>(buffer_.size());
    const auto before_sync = Clock::now();
    if (::fdatasync(fd_) != 0) {
      failed_ = std::string("fdatasync: ") + std::strerror(errno);
      return false;
    }
    const auto durable = Clock::now();
    result_.sync_ms.push_back(ms_between(before_sync, durable));
    for (const auto& arrived : group) result_.latency_ms.push_back(ms_between(arrived, durable));
    return true;
  }

  const ProbeConfig& config_;
  const int fd_;
  const std::size_t piece_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Clock::time_point> waiting_;  // arrivals not yet in a group
  bool done_ = false;                      // no more arrivals (or the committer failed)
  std::vector<char> buffer_;
  off_t offset_ = 0;
  std::string failed_;  // set by the committer when a write or fdatasync fails
  ProbeResult result_;
};

ProbeResult run_probe(const ProbeConfig& config, int fd) { return GroupCommitProbe(config, fd).run(); }

void print_json(ProbeResult& r, const ProbeConfig& config) {
  std::printf(
      "{\"seconds\":%.1f,\"bytes_per_second\":%.0f,\"arrival_us\":%d,\"preallocated\":%s,\"groups\":%zu,\"arrivals\":%zu,"
      "\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f},"
      "\"fdatasync_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f}}\n",
      config.seconds, config.bytes_per_second, config.arrival_us, config.preallocate ? "true" : "false",
      r.sync_ms.size(), r.latency_ms.size(), percentile(r.latency_ms, 0.5), percentile(r.latency_ms, 0.9),
      percentile(r.latency_ms, 0.99), percentile(r.latency_ms, 0.999), percentile(r.latency_ms, 1.0),
      percentile(r.sync_ms, 0.5), percentile(r.sync_ms, 0.99), percentile(r.sync_ms, 0.999), percentile(r.sync_ms, 1.0));
}

void add_options(po::options_description& o) {
  o.add_options()("help", "this text")
      ("dir", po::value<std::string>()->required(), "directory on the disk to measure (a temporary file is written there and removed)")
      ("seconds", po::value<double>()->default_value(5), "how long data arrives")
      ("bytes-per-second", po::value<double>()->required(), "arrival rate, e.g. events/s times bytes per logged event")
      ("arrival-us", po::value<int>()->default_value(100), "data arrives in pieces this many microseconds apart")
      ("preallocate", po::bool_switch(), "zero-fill the file first, so that writes overwrite allocated blocks")
      ("ready-file", po::value<std::string>()->default_value(""), "create this file when the timed part starts");
}

// Fills `config` from the command line. An exit code when the program should end now: 0 after
// --help, 2 after a usage error (printed with the options on stderr).
std::optional<int> parse(int argc, char** argv, const po::options_description& o, ProbeConfig& config) {
  try {
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, o), vm);
    if (vm.count("help")) {
      std::cout << o << "\nPrints one JSON line: latency from arrival to durable (ms) and fdatasync times.\n";
      return 0;
    }
    po::notify(vm);
    config.file = vm["dir"].as<std::string>() + "/pm-log-probe." + std::to_string(::getpid());
    config.seconds = vm["seconds"].as<double>();
    config.bytes_per_second = vm["bytes-per-second"].as<double>();
    config.arrival_us = vm["arrival-us"].as<int>();
    config.preallocate = vm["preallocate"].as<bool>();
    config.ready_file = vm["ready-file"].as<std::string>();
    if (!(config.seconds > 0 && config.seconds <= 3600) || config.arrival_us <= 0 || config.arrival_us > 1000000)
      throw po::error("--seconds must be in (0, 3600] and --arrival-us in [1, 1000000]");
    if (!(config.bytes_per_second <= 1e11) || piece_bytes(config) == 0)
      throw po::error("--bytes-per-second must give at least one byte per arrival (bytes-per-second * arrival-us >= 1e6) and be at most 1e11");
  } catch (const po::error& e) {
    std::cerr << "pm-log-probe: " << e.what() << "\n" << o;
    return 2;
  }
  return std::nullopt;
}

// Creates the (at once unlinked) file, runs the probe on it and prints the result; the exit code.
int probe(const ProbeConfig& config) {
  const int fd = ::open(config.file.c_str(), O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::perror(("pm-log-probe: create " + config.file).c_str());
    return 1;
  }
  ::unlink(config.file.c_str());  // gone whatever happens; the open descriptor keeps it until exit
  int status = 0;
  try {
    if (config.preallocate && !preallocate(fd, static_cast<std::uint64_t>(config.bytes_per_second * config.seconds) + (64u << 20)))
      throw std::runtime_error("cannot zero-fill " + config.file);
    if (!config.ready_file.empty() && !std::ofstream(config.ready_file))
      throw std::runtime_error("cannot create " + config.ready_file);
    ProbeResult result = run_probe(config, fd);
    print_json(result, config);
  } catch (const std::exception& e) {
    std::cerr << "pm-log-probe: " << e.what() << "\n";
    status = 1;
  }
  ::close(fd);
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  po::options_description o("pm-log-probe: latency of an ideal group-committing log on a directory's disk\nOptions");
  add_options(o);
  ProbeConfig config;
  if (const std::optional<int> exit_code = parse(argc, argv, o, config)) return *exit_code;
  return probe(config);
}

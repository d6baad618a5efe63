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

ProbeResult run_probe(const ProbeConfig& config, int fd) {
  const std::size_t piece = piece_bytes(config);
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Clock::time_point> waiting;
  bool done = false;
  std::string failed;  // set by the committer when a write or fdatasync fails
  ProbeResult result;
  std::thread committer([&] {
    std::vector<char> buffer;
    off_t offset = 0;
    std::unique_lock lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return done || !waiting.empty(); });
      if (waiting.empty()) return;
      std::vector<Clock::time_point> group(waiting.begin(), waiting.end());
      waiting.clear();
      lock.unlock();
      buffer.assign(group.size() * piece, 'x');
      if (!write_all(fd, buffer.data(), buffer.size(), offset)) {
        failed = std::string("write: ") + std::strerror(errno);
        lock.lock();
        done = true;
        return;
      }
      offset += static_cast<off_t>(buffer.size());
      const auto before_sync = Clock::now();
      if (::fdatasync(fd) != 0) {
        failed = std::string("fdatasync: ") + std::strerror(errno);
        lock.lock();
        done = true;
        return;
      }
      const auto durable = Clock::now();
      result.sync_ms.push_back(ms_between(before_sync, durable));
      for (const auto& arrived : group) result.latency_ms.push_back(ms_between(arrived, durable));
      lock.lock();
    }
  });
  const auto start = Clock::now();
  const auto stop = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(config.seconds));
  for (auto due = start; due < stop;) {
    due += std::chrono::microseconds(config.arrival_us);
    std::this_thread::sleep_until(due);
    {
      std::lock_guard lock(mu);
      if (done) break;  // the committer failed
      waiting.push_back(due);
    }
    cv.notify_one();
  }
  {
    std::lock_guard lock(mu);
    done = true;
  }
  cv.notify_one();
  committer.join();
  if (!failed.empty()) throw std::runtime_error(failed);
  return result;
}

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

}  // namespace

int main(int argc, char** argv) {
  po::options_description o("pm-log-probe: latency of an ideal group-committing log on a directory's disk\nOptions");
  o.add_options()("help", "this text")
      ("dir", po::value<std::string>()->required(), "directory on the disk to measure (a temporary file is written there and removed)")
      ("seconds", po::value<double>()->default_value(5), "how long data arrives")
      ("bytes-per-second", po::value<double>()->required(), "arrival rate, e.g. events/s times bytes per logged event")
      ("arrival-us", po::value<int>()->default_value(100), "data arrives in pieces this many microseconds apart")
      ("preallocate", po::bool_switch(), "zero-fill the file first, so that writes overwrite allocated blocks")
      ("ready-file", po::value<std::string>()->default_value(""), "create this file when the timed part starts");
  ProbeConfig config;
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

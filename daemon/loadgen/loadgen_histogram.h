#pragma once
// LatencyHistogram: a lock-free log-linear histogram of durations in nanoseconds, for pm-loadgen's
// ack latencies.
//
// Contract:
// - record() from any number of threads concurrently (relaxed atomics; no locks, no allocation).
// - Values are kept in buckets of 128 sub-buckets per power of two, so a reported percentile is
//   within 1/128 (< 0.8 %) above the true sample; max() is exact.
// - percentile(p) for p in [0, 1] returns the upper bound of the bucket holding the sample of rank
//   ceil(p * count) (0 when empty). snapshot_and_reset() moves the counts into a plain copy, for
//   the per-second progress line; a record() racing with it lands in one interval or the next.
#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

namespace pm::loadgen {

class LatencyHistogram {
 public:
  static constexpr int kSubBits = 7;
  static constexpr int kBuckets = (64 - kSubBits + 1) << kSubBits;

  struct Snapshot {
    std::vector<std::uint64_t> counts = std::vector<std::uint64_t>(kBuckets, 0);
    std::uint64_t count = 0;
    std::uint64_t sum_ns = 0;
    std::uint64_t max_ns = 0;
    std::uint64_t percentile(double p) const;
    double mean_ns() const { return count ? static_cast<double>(sum_ns) / static_cast<double>(count) : 0.0; }
    void merge(const Snapshot& other);
  };

  void record(std::uint64_t ns);
  Snapshot snapshot() const;
  Snapshot snapshot_and_reset();

  static int bucket_of(std::uint64_t ns);
  static std::uint64_t bucket_upper(int bucket);

 private:
  std::array<std::atomic<std::uint64_t>, kBuckets> counts_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_ns_{0};
  std::atomic<std::uint64_t> max_ns_{0};
};

}  // namespace pm::loadgen

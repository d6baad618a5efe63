#include "daemon/loadgen/loadgen_histogram.h"

#include <bit>
#include <cmath>

namespace pm::loadgen {

int LatencyHistogram::bucket_of(std::uint64_t ns) {
  constexpr std::uint64_t kSub = 1ull << kSubBits;
  if (ns < kSub) return static_cast<int>(ns);
  const int msb = 63 - std::countl_zero(ns);
  const int shift = msb - kSubBits;
  return ((shift + 1) << kSubBits) + static_cast<int>((ns >> shift) - kSub);
}

std::uint64_t LatencyHistogram::bucket_upper(int bucket) {
  constexpr std::uint64_t kSub = 1ull << kSubBits;
  if (bucket < static_cast<int>(kSub)) return static_cast<std::uint64_t>(bucket);
  const int shift = (bucket >> kSubBits) - 1;
  const std::uint64_t rem = static_cast<std::uint64_t>(bucket) & (kSub - 1);
  return ((rem + kSub + 1) << shift) - 1;
}

void LatencyHistogram::record(std::uint64_t ns) {
  counts_[static_cast<std::size_t>(bucket_of(ns))].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(ns, std::memory_order_relaxed);
  std::uint64_t seen = max_ns_.load(std::memory_order_relaxed);
  while (ns > seen && !max_ns_.compare_exchange_weak(seen, ns, std::memory_order_relaxed)) {
  }
}

LatencyHistogram::Snapshot LatencyHistogram::snapshot() const {
  Snapshot s;
  for (int i = 0; i < kBuckets; ++i) {
    s.counts[static_cast<std::size_t>(i)] = counts_[static_cast<std::size_t>(i)].load(std::memory_order_relaxed);
    s.count += s.counts[static_cast<std::size_t>(i)];
  }
  s.sum_ns = sum_ns_.load(std::memory_order_relaxed);
  s.max_ns = max_ns_.load(std::memory_order_relaxed);
  return s;
}

LatencyHistogram::Snapshot LatencyHistogram::snapshot_and_reset() {
  Snapshot s;
  for (int i = 0; i < kBuckets; ++i) {
    s.counts[static_cast<std::size_t>(i)] = counts_[static_cast<std::size_t>(i)].exchange(0, std::memory_order_relaxed);
    s.count += s.counts[static_cast<std::size_t>(i)];
  }
  count_.store(0, std::memory_order_relaxed);
  s.sum_ns = sum_ns_.exchange(0, std::memory_order_relaxed);
  s.max_ns = max_ns_.exchange(0, std::memory_order_relaxed);
  return s;
}

std::uint64_t LatencyHistogram::Snapshot::percentile(double p) const {
  if (count == 0) return 0;
  const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(p * static_cast<double>(count))));
  std::uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts[static_cast<std::size_t>(i)];
    if (seen >= rank) return std::min(bucket_upper(i), max_ns);
  }
  return max_ns;
}

void LatencyHistogram::Snapshot::merge(const Snapshot& other) {
  for (std::size_t i = 0; i < counts.size(); ++i) counts[i] += other.counts[i];
  count += other.count;
  sum_ns += other.sum_ns;
  max_ns = std::max(max_ns, other.max_ns);
}

}  // namespace pm::loadgen

#pragma once
// Text times as other writers (the original bot) store them in the TEXT *_at columns, for the D8
// ordering tests. kLegacyTimesOldestFirst is in time order; neither their text order nor the order
// insert_legacy_rows() writes them in (so neither id order) is that order, so only a list that
// orders by the parsed instant passes. kNotATime names no time: lists put it after every time, in
// either direction (repo_support.h).
#include <algorithm>
#include <string>
#include <vector>

namespace pm::test {

inline const std::vector<std::string> kLegacyTimesOldestFirst = {
    "2024-01-10T08:30:00.999Z",     // 08:30:00.999 UTC
    "2024-01-10T11:00:00+02:00",    // 09:00 UTC
    "2024-01-10 10:00",             // 10:00 UTC (no zone: UTC); first of all as text
    "2024-01-10T10:30:00.000000Z",  // 10:30 UTC, the library's own shape
    "2024-01-11",                   // 2024-01-11 00:00 UTC; last of all as text
    "2024-01-10T23:30:00-0200",     // 2024-01-11 01:30 UTC
};
inline constexpr const char* kNotATime = "not a time";

// Calls insert(text) once for each legacy time and for kNotATime (in the middle), in an order
// that is neither time nor text order.
template <class Insert>
void insert_legacy_rows(Insert&& insert) {
  for (const std::size_t i : {3u, 5u, 0u}) insert(kLegacyTimesOldestFirst[i]);
  insert(std::string(kNotATime));
  for (const std::size_t i : {2u, 4u, 1u}) insert(kLegacyTimesOldestFirst[i]);
}

// What a newest-first list returns: the times newest first, then kNotATime.
inline std::vector<std::string> legacy_newest_first() {
  std::vector<std::string> out(kLegacyTimesOldestFirst.rbegin(), kLegacyTimesOldestFirst.rend());
  out.emplace_back(kNotATime);
  return out;
}

// What an oldest-first list returns: the times oldest first, then kNotATime.
inline std::vector<std::string> legacy_oldest_first() {
  std::vector<std::string> out = kLegacyTimesOldestFirst;
  out.emplace_back(kNotATime);
  return out;
}

// The texts in `rows` (model objects) as read by `at`, in list order.
template <class Rows, class At>
std::vector<std::string> texts_of(const Rows& rows, At&& at) {
  std::vector<std::string> out;
  for (const auto& r : rows) out.push_back(at(r));
  return out;
}

}  // namespace pm::test

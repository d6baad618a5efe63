#pragma once
// Shared by the fuzz targets: a check that aborts (libFuzzer then saves the input as a crash),
// and the event's binary encoding, which compares every field bit for bit.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ingest/events/event_codec.h"

namespace pm::fuzz {

[[noreturn]] inline void fail(const char* what, std::string_view a = {}, std::string_view b = {}) {
  std::fprintf(stderr, "fuzz check failed: %s\n", what);
  auto dump = [](const char* label, std::string_view s) {
    if (s.empty()) return;
    std::fprintf(stderr, "%s (%zu bytes):", label, s.size());
    for (unsigned char c : s.substr(0, 512)) std::fprintf(stderr, " %02x", c);
    std::fprintf(stderr, "\n");
  };
  dump("first", a);
  dump("second", b);
  std::abort();
}

#define PM_FUZZ_CHECK(cond, ...) \
  do {                           \
    if (!(cond)) ::pm::fuzz::fail("(" #cond ") " __VA_ARGS__); \
  } while (0)

inline std::string encoded(const Event& event) {
  std::string out;
  encode_event(event, out);
  return out;
}

}  // namespace pm::fuzz

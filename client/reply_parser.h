#pragma once
// The daemon's reply lines (docs/protocol.md): `{"ack":N}` and
// `{"error":"<reason>","line":K,"detail":"..."}`. Internal to pm_client (not installed).
// One ReplyParser per thread.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace pm::client {

struct Reply {
  enum class Kind { Ack, Error, Unknown };
  Kind kind = Kind::Unknown;
  std::uint64_t line = 0;  // Ack: N; Error: K
  std::string reason;
  std::string detail;
};

class ReplyParser {
 public:
  ReplyParser();
  ~ReplyParser();
  Reply parse(std::string_view text);  // never throws; Unknown for anything else

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pm::client

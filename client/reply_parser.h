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
  // Unknown: a JSON object of another kind (a newer daemon's; ignored). Malformed: not a JSON
  // object (as RFC 8259 has it: {"ack":017} is not), or an `ack` or `error` reply whose fields are
  // missing or mistyped (a `detail` may be missing; present, it must be a string).
  enum class Kind { Ack, Error, Unknown, Malformed };
  Kind kind = Kind::Unknown;
  std::uint64_t line = 0;  // Ack: N; Error: K
  std::string reason;
  std::string detail;
};

class ReplyParser {
 public:
  ReplyParser();
  ~ReplyParser();
  Reply parse(std::string_view text);  // never throws

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pm::client

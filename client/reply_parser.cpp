#include "client/reply_parser.h"

#include <charconv>

#include <simdjson.h>

namespace pm::client {

struct ReplyParser::Impl {
  simdjson::dom::parser parser;
};

ReplyParser::ReplyParser() : impl_(std::make_unique<Impl>()) {}
ReplyParser::~ReplyParser() = default;

// `{"ack":N}` exactly as the daemon writes it: most replies, parsed without simdjson.
static bool parse_plain_ack(std::string_view text, std::uint64_t& n) {
  constexpr std::string_view kPrefix = R"({"ack":)";
  if (text.size() < kPrefix.size() + 2 || text.substr(0, kPrefix.size()) != kPrefix || text.back() != '}') return false;
  const char* begin = text.data() + kPrefix.size();
  const char* end = text.data() + text.size() - 1;
  if (*begin == '0' && end - begin > 1) return false;  // a leading zero is not JSON: the slow path refuses it
  const auto [at, ec] = std::from_chars(begin, end, n);
  return ec == std::errc() && at == end;
}

Reply ReplyParser::parse(std::string_view text) {
  Reply reply;
  if (std::uint64_t n = 0; parse_plain_ack(text, n)) {
    reply.kind = Reply::Kind::Ack;
    reply.line = n;
    return reply;
  }
  reply.kind = Reply::Kind::Malformed;
  simdjson::dom::object obj;
  if (impl_->parser.parse(text.data(), text.size()).get(obj) != simdjson::SUCCESS) return reply;
  std::uint64_t n = 0;
  if (obj.at_key("ack").error() == simdjson::SUCCESS) {
    if (obj["ack"].get(n) != simdjson::SUCCESS) return reply;
    reply.kind = Reply::Kind::Ack;
    reply.line = n;
    return reply;
  }
  std::string_view reason, detail;
  if (obj.at_key("error").error() != simdjson::SUCCESS) {
    reply.kind = Reply::Kind::Unknown;
    return reply;
  }
  if (obj["error"].get(reason) != simdjson::SUCCESS || obj["line"].get(n) != simdjson::SUCCESS) return reply;
  // The detail may be missing; present, it is a string (docs/protocol.md), as the Python client checks.
  if (obj.at_key("detail").error() == simdjson::SUCCESS && obj["detail"].get(detail) != simdjson::SUCCESS) return reply;
  reply.kind = Reply::Kind::Error;
  reply.line = n;
  reply.reason = std::string(reason);
  reply.detail = std::string(detail);
  return reply;
}

}  // namespace pm::client

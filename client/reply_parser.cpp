#include "client/reply_parser.h"

#include <simdjson.h>

namespace pm::client {

struct ReplyParser::Impl {
  simdjson::dom::parser parser;
};

ReplyParser::ReplyParser() : impl_(std::make_unique<Impl>()) {}
ReplyParser::~ReplyParser() = default;

Reply ReplyParser::parse(std::string_view text) {
  Reply reply;
  simdjson::dom::object obj;
  if (impl_->parser.parse(text.data(), text.size()).get(obj) != simdjson::SUCCESS) return reply;
  std::uint64_t n = 0;
  if (obj["ack"].get(n) == simdjson::SUCCESS) {
    reply.kind = Reply::Kind::Ack;
    reply.line = n;
    return reply;
  }
  std::string_view reason, detail;
  if (obj["error"].get(reason) != simdjson::SUCCESS || obj["line"].get(n) != simdjson::SUCCESS) return reply;
  if (obj["detail"].get(detail) != simdjson::SUCCESS) detail = {};
  reply.kind = Reply::Kind::Error;
  reply.line = n;
  reply.reason = std::string(reason);
  reply.detail = std::string(detail);
  return reply;
}

}  // namespace pm::client

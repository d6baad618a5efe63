#include "ingest/server/line_decoder.h"

#include "ingest/server/parse_memory_budget.h"

namespace pm {

std::optional<Rejection> LineDecoder::decode(std::uint64_t number, std::string_view text, std::int64_t received_ms,
                                             std::vector<Event>& events) {
  tally_.hello.reset();
  if (later_lines_) return *later_lines_;
  const ParseMemoryBudget::Lease parse_memory = budget_.take(text.size());
  // A hello's key may be spelled with escapes ("\u0068ello"; any letter of "hello" escaped is
  // \u006x): the parser reads it as "hello".
  if (number == 1 && (text.find("\"hello\"") != std::string_view::npos || text.find("\\u006") != std::string_view::npos)) {
    auto hello = polymarket_.read_hello_line(text);
    if (hello && std::holds_alternative<PayloadFormat>(*hello)) {
      format_ = std::get<PayloadFormat>(*hello);
      tally_.hello = format_;
      tally_.messages.fill(0);
      return std::nullopt;
    }
    // No format declared: the Polymarket parser that checked the line is not used again.
    polymarket_.release_buffers();
    if (hello) {
      later_lines_ = std::get<Rejection>(*hello).reason == RejectReason::Busy
                         ? Rejection{RejectReason::Busy, "line 1 (a hello?) could not be read: send the hello and the "
                                                         "lines again on a new connection; not stored"}
                         : Rejection{RejectReason::Schema, "line 1, a hello, was refused, so no line of this connection "
                                                           "is read: connect again with a format this daemon knows (or "
                                                           "no hello, for protocol v1 lines); not stored"};
      return std::move(std::get<Rejection>(*hello));
    }
  }
  if (format_ == PayloadFormat::PmIngestd) return decode_v1(text, received_ms, events);
  return polymarket_.parse(format_, text, received_ms, events, tally_.messages);
}

void LineDecoder::release_buffers() {
  v1_.release_buffers();
  polymarket_.release_buffers();
}

std::optional<Rejection> LineDecoder::decode_v1(std::string_view text, std::int64_t received_ms, std::vector<Event>& events) {
  auto parsed = v1_.parse(text, received_ms);
  if (auto* rejection = std::get_if<Rejection>(&parsed)) return std::move(*rejection);
  events.push_back(std::move(std::get<Event>(parsed)));
  return std::nullopt;
}

}  // namespace pm

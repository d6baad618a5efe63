// libFuzzer target: arbitrary bytes as one producer line (docs/protocol.md).
// LineParser::parse must never crash or throw; an accepted line must survive the log's codec
// (decode(encode(e)) encodes to the same bytes) and event_to_json must render it as a line that
// parses back to the same event (what dead letters and `pm-ingestctl wal-dump` rely on).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "ingest/events/event_codec.h"
#include "ingest/server/protocol.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

constexpr std::int64_t kReceivedMs = 1'700'000'000'123;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pm;
  // One parser for every input, as one connection thread keeps its parser for every line.
  static LineParser parser;
  static LineParser reparser;
  const std::string_view line(reinterpret_cast<const char*>(data), size);

  auto result = parser.parse(line, kReceivedMs);
  auto* event = std::get_if<Event>(&result);
  if (event == nullptr) {
    PM_FUZZ_CHECK(!std::get<Rejection>(result).detail.empty(), "a rejection names what was wrong");
    return 0;
  }
  PM_FUZZ_CHECK(event->received_ms == kReceivedMs);

  const std::string bytes = fuzz::encoded(*event);
  std::string error;
  auto decoded = decode_event(bytes, &error);
  PM_FUZZ_CHECK(decoded.has_value(), "an encoded event decodes", bytes);
  PM_FUZZ_CHECK(fuzz::encoded(*decoded) == bytes, "decode(encode(e)) re-encodes identically", bytes,
                fuzz::encoded(*decoded));

  // event_to_json: a protocol line whose parse is the same event. A trade's raw_json comes back
  // as the field (the received line when the producer sent none), so it matches as it is.
  const std::string json = event_to_json(*event);
  auto again = reparser.parse(json, kReceivedMs);
  auto* back = std::get_if<Event>(&again);
  PM_FUZZ_CHECK(back != nullptr, "event_to_json's line is accepted", json,
                back == nullptr ? std::get<Rejection>(again).detail : std::string());
  PM_FUZZ_CHECK(fuzz::encoded(*back) == bytes, "event_to_json's line parses to the same event", bytes,
                fuzz::encoded(*back));
  return 0;
}

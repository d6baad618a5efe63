// libFuzzer target: arbitrary bytes as a write-ahead log record payload (docs/wal-format.md).
// decode_event must never read past the payload, crash or throw. The encoding is canonical, so a
// payload that decodes is exactly the encoding of what it decoded to, and decode(encode(x))
// encodes to the same bytes again. event_to_json of whatever decodes (strings of any bytes,
// any double) must still be valid JSON in valid UTF-8: it is what dead letters store and what
// `pm-ingestctl wal-dump` prints.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <simdjson.h>

#include "ingest/events/event_codec.h"
#include "ingest/server/protocol.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pm;
  static simdjson::dom::parser json_parser;
  const std::string_view payload(reinterpret_cast<const char*>(data), size);

  std::string error;
  auto event = decode_event(payload, &error);
  if (!event) {
    PM_FUZZ_CHECK(!error.empty(), "a payload that does not decode says why", payload);
    return 0;
  }
  const std::string bytes = fuzz::encoded(*event);
  PM_FUZZ_CHECK(bytes == payload, "a payload that decodes is the encoding of its event", payload, bytes);
  auto again = decode_event(bytes);
  PM_FUZZ_CHECK(again.has_value(), "encode(decode(x)) decodes", bytes);
  PM_FUZZ_CHECK(fuzz::encoded(*again) == bytes, "decode(encode(x)) re-encodes identically", bytes,
                fuzz::encoded(*again));

  const std::string json = event_to_json(*event);
  simdjson::dom::element doc;
  const auto parsed = json_parser.parse(json).get(doc);
  PM_FUZZ_CHECK(parsed == simdjson::SUCCESS, "event_to_json renders valid JSON", json,
                simdjson::error_message(parsed));
  PM_FUZZ_CHECK(doc.is_object(), "event_to_json renders an object", json);
  return 0;
}

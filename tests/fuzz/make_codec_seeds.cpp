// Writes the seed corpus of fuzz_event_codec: every line of the given files that LineParser
// accepts, encoded as a log record payload, one file per line (NNN.bin). Run by hand when the
// encoding changes; its output is committed under tests/fuzz/corpus/fuzz_event_codec/.
//   make_codec_seeds OUT_DIR tests/fuzz/corpus/fuzz_line_parser/*
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <variant>

#include "ingest/events/event_codec.h"
#include "ingest/server/protocol.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s OUT_DIR LINE_FILE...\n", argv[0]);
    return 2;
  }
  const std::string out_dir = argv[1];
  pm::LineParser parser;
  int written = 0;
  for (int i = 2; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    const std::string line((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto result = parser.parse(line, 1'700'000'000'123);
    const auto* event = std::get_if<pm::Event>(&result);
    if (event == nullptr) continue;
    std::string bytes;
    pm::encode_event(*event, bytes);
    char name[32];
    std::snprintf(name, sizeof name, "/%03d.bin", written++);
    std::ofstream(out_dir + name, std::ios::binary) << bytes;
  }
  std::printf("make_codec_seeds: wrote %d payloads to %s\n", written, out_dir.c_str());
  return written > 0 ? 0 : 1;
}

#pragma once
// `pm-ingestctl send`: a producer for shell pipelines and cron jobs, on pm::client::ProducerClient.
// Reads NDJSON (one line per line) or a JSON array (a REST response: one line per element) from
// files or stdin, sends every line, waits for the acks (reconnecting and resending what was not
// acknowledged, retrying `busy`), and prints a summary: sent, acked, rejected by reason with the
// input line (or array element) of each, unacknowledged. Exit 0 when every line was acked, 1 when
// any was rejected or left unacknowledged.
#include <chrono>
#include <istream>
#include <string>
#include <vector>

namespace pm::ctl {

struct SendCommand {
  std::string socket_path;
  std::vector<std::string> inputs;  // files; empty or "-": standard input
  std::string format = "pm-ingestd";
  std::size_t max_in_flight = 1000;
  std::chrono::seconds give_up_after{60};
};

// One line to send, and where it came from ("file:12", "file:[3]").
struct InputLine {
  std::string text;
  std::string origin;
};

// The lines of one input's text: each element of a whole-input JSON array (the whitespace between
// its tokens removed, every token byte for byte), else each non-empty line. The whole input is
// read before anything is sent (not for endless streams).
std::vector<InputLine> split_input(const std::string& name, const std::string& text);

int run_send(const SendCommand& command, std::istream& standard_input);

}  // namespace pm::ctl

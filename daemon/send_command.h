#pragma once
// `pm-ingestctl send`: a producer for shell pipelines and cron jobs, on pm::client::ProducerClient.
// Reads NDJSON (one line per line) or a JSON array (a REST response: one line per element) from
// files or stdin, sends every line, waits for the acks (reconnecting and resending what was not
// acknowledged, retrying `busy`), and prints a summary: sent, acked, rejected by reason with the
// input line (or array element) of each, unacknowledged. Exit 0 when every line was acked, 1 when
// any was rejected or left unacknowledged. The first give-up (no acknowledgement for
// give_up_after: the daemon unreachable, or answering only `busy`) ends the run: the lines in
// flight are reported unacknowledged at once and the input is not read further (the summary names
// the last line sent and the inputs not read), also when it came while a pipe was quiet.
// NDJSON streams: each line is sent as soon as it is read (`tail -f | pm-ingestctl send` works);
// only an input that is one JSON array is read whole first (see InputReader).
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
// its tokens removed, every token byte for byte), else each non-empty line.
std::vector<InputLine> split_input(const std::string& name, const std::string& text);

// The lines of one input stream, as split_input() would cut its whole text, but each NDJSON line
// handed out as soon as it is read. The input is read whole before the first line only when it
// may be one JSON array: its first line begins with '[' and is not complete JSON by itself (a
// pretty-printed array), or is a complete array followed by the end of the input (a compact REST
// response; deciding this waits for the second line or the end). One thread.
class InputReader {
 public:
  InputReader(std::string name, std::istream& in) : name_(std::move(name)), in_(in) {}
  bool next(InputLine& line);  // false at the end of the input

 private:
  bool start();  // the first line: decides between streaming and reading whole
  std::string name_;
  std::istream& in_;
  bool started_ = false;
  std::size_t number_ = 0;           // lines read so far (streaming)
  std::vector<InputLine> whole_;     // the input read whole and split (or the first streamed line)
  std::size_t next_whole_ = 0;
};

// `standard_input`: the descriptor read for the input "-" (not closed). Reading any input stops
// at the client's first give-up, also while it waits for a line (InputStop).
int run_send(const SendCommand& command, int standard_input);

}  // namespace pm::ctl

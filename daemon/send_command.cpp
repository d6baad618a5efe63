#include "daemon/send_command.h"

#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <mutex>
#include <sstream>

#include <fmt/format.h>
#include <simdjson.h>

#include "client/producer_client.h"
#include "ingest/server/json_spans.h"

namespace pm::ctl {

namespace {

std::string read_all(std::istream& in) { return std::string(std::istreambuf_iterator<char>(in), {}); }

std::string read_input(const std::string& name, std::istream& standard_input) {
  if (name == "-") return read_all(standard_input);
  std::ifstream file(name, std::ios::binary);
  if (!file) throw std::invalid_argument("cannot read " + name);
  return read_all(file);
}

// `json` without the whitespace between its tokens: every token (strings, numbers as written)
// byte for byte, so a pretty-printed element becomes one line and its raw_json keeps its text.
std::string compact_json(std::string_view json) {
  std::string out;
  out.reserve(json.size());
  bool in_string = false, escaped = false;
  for (const char c : json) {
    if (in_string) {
      escaped = !escaped && c == '\\';
      in_string = escaped || c != '"';
    } else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      continue;
    } else {
      in_string = c == '"';
    }
    out += c;
  }
  return out;
}

// The elements of `text` when it is one JSON array as a whole (a pretty-printed REST response).
bool split_array(const std::string& name, const std::string& text, std::vector<InputLine>& out) {
  const std::size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || text[first] != '[') return false;
  simdjson::dom::parser parser;
  simdjson::dom::array array;
  std::vector<std::string_view> spans;
  if (parser.parse(text).get(array) != simdjson::SUCCESS || !array_element_spans(text, spans)) return false;
  for (std::size_t i = 0; i < spans.size(); ++i) out.push_back({compact_json(spans[i]), fmt::format("{}:[{}]", name, i)});
  return true;
}

struct Outcomes {
  std::mutex mu;
  std::map<std::string, std::vector<std::string>> rejected;  // reason -> "origin: detail"
  std::vector<std::string> unacknowledged;
  std::size_t acked = 0;
};

void print_summary(const SendCommand& c, std::size_t sent, std::size_t inputs, const client::ProducerStats& stats, Outcomes& o) {
  std::size_t rejected = 0;
  for (const auto& [reason, lines] : o.rejected) rejected += lines.size();
  std::cout << fmt::format("sent {} lines from {} input(s) (format {}): acked {}, rejected {}, unacknowledged {} "
                           "({} reconnects, {} busy replies retried)\n",
                           sent, inputs, c.format, o.acked, rejected, o.unacknowledged.size(), stats.reconnects, stats.busy);
  const auto list = [](const std::string& title, const std::vector<std::string>& lines) {
    std::cout << title << " (" << lines.size() << "):\n";
    for (std::size_t i = 0; i < lines.size() && i < 100; ++i) std::cout << "  " << lines[i] << "\n";
    if (lines.size() > 100) std::cout << "  ... and " << lines.size() - 100 << " more\n";
  };
  for (const auto& [reason, lines] : o.rejected) list("rejected " + reason, lines);
  if (!o.unacknowledged.empty()) list("unacknowledged (may or may not be stored; sending them again is safe)", o.unacknowledged);
}

}  // namespace

std::vector<InputLine> split_input(const std::string& name, const std::string& text) {
  std::vector<InputLine> out;
  if (split_array(name, text, out)) return out;
  std::istringstream in(text);
  std::size_t number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    out.push_back({std::move(line), fmt::format("{}:{}", name, number)});
  }
  return out;
}

int run_send(const SendCommand& c, std::istream& standard_input) {
  const std::vector<std::string> inputs = c.inputs.empty() ? std::vector<std::string>{"-"} : c.inputs;
  std::vector<InputLine> lines;
  for (const std::string& name : inputs) {
    std::vector<InputLine> some = split_input(name == "-" ? "stdin" : name, read_input(name, standard_input));
    lines.insert(lines.end(), std::make_move_iterator(some.begin()), std::make_move_iterator(some.end()));
  }
  client::ProducerOptions options;
  options.socket_path = c.socket_path;
  options.format = c.format;
  options.max_in_flight = c.max_in_flight;
  options.give_up_after = std::chrono::duration_cast<std::chrono::milliseconds>(c.give_up_after);
  Outcomes outcomes;
  client::ProducerStats stats;
  {
    client::ProducerClient producer(options);
    for (InputLine& line : lines)
      producer.send(std::move(line.text), [&outcomes, origin = line.origin](const client::LineOutcome& o) {
        std::lock_guard lock(outcomes.mu);
        if (o.acked())
          ++outcomes.acked;
        else if (o.status == client::LineOutcome::Status::Rejected)
          outcomes.rejected[o.reason].push_back(origin + (o.detail.empty() ? "" : ": " + o.detail));
        else
          outcomes.unacknowledged.push_back(origin + " (" + o.reason + ")");
      });
    producer.close(std::chrono::hours(24));  // the client gives lines up after give_up_after without progress
    stats = producer.stats();
  }
  print_summary(c, lines.size(), inputs.size(), stats, outcomes);
  return outcomes.acked == lines.size() ? 0 : 1;
}

}  // namespace pm::ctl

#include "daemon/send_command.h"

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <system_error>

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <simdjson.h>

#include "client/producer_client.h"
#include "daemon/stoppable_input.h"
#include "ingest/server/json_spans.h"

namespace pm::ctl {

namespace {

std::string read_all(std::istream& in) { return std::string(std::istreambuf_iterator<char>(in), {}); }

bool blank(const std::string& line) { return line.find_first_not_of(" \t\r") == std::string::npos; }

bool complete_json(std::string_view text) {
  simdjson::dom::parser parser;
  simdjson::dom::element element;
  return parser.parse(text.data(), text.size()).get(element) == simdjson::SUCCESS;
}

// One input read through a FdReadBuf: its reads end at the stop (the client's first give-up).
struct OpenInput {
  std::string name;  // for the summary
  int fd = -1;
  bool owned = false;  // opened here (closed at the end), not standard input
  std::unique_ptr<FdReadBuf> buffer;
  std::unique_ptr<std::istream> stream;
  OpenInput(std::string n, int f, bool o, const InputStop& stop)
      : name(std::move(n)), fd(f), owned(o), buffer(std::make_unique<FdReadBuf>(f, stop)),
        stream(std::make_unique<std::istream>(buffer.get())) {}
  OpenInput(const OpenInput&) = delete;
  OpenInput& operator=(const OpenInput&) = delete;
  ~OpenInput() {
    if (owned) ::close(fd);
  }
};

// Every input, opened before anything is sent (a missing file is refused before the first line).
std::vector<std::unique_ptr<OpenInput>> open_inputs(const std::vector<std::string>& names, int standard_input,
                                                    const InputStop& stop) {
  std::vector<std::unique_ptr<OpenInput>> open;
  for (const std::string& name : names) {
    if (name == "-") {
      open.push_back(std::make_unique<OpenInput>("stdin", standard_input, false, stop));
      continue;
    }
    // A directory opens, and its first read fails: read as empty input, it sent nothing and exited 0.
    std::error_code ec;
    if (std::filesystem::is_directory(name, ec)) throw std::invalid_argument("cannot read " + name + ": it is a directory");
    const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::invalid_argument("cannot read " + name + ": " + std::generic_category().message(errno));
    open.push_back(std::make_unique<OpenInput>(name, fd, true, stop));
  }
  return open;
}

// `json` without the whitespace between its tokens: every token (strings, numbers as written)
// byte for byte, so a pretty-printed element becomes one line and its raw_json keeps its text.
std::string compact_json(std::string_view json) {
  std::string out;
  out.reserve(json.size());
  for (std::size_t i = 0; i < json.size();) {
    const char c = json[i];
    if (c == '"') {  // kept byte for byte, escaped quotes and whitespace inside it too
      const std::size_t end = json_string_end(json, i);
      out.append(json.substr(i, end - i));
      i = end;
      continue;
    }
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') out += c;
    ++i;
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

// Lines of one kind of outcome: how many, and the first kShown of them (a run behind `tail -F`
// may see bad lines without end; only those are printed).
struct OutcomeList {
  static constexpr std::size_t kShown = 100;
  std::size_t count = 0;
  std::vector<std::string> first;
  void add(std::string line) {
    if (++count <= kShown) first.push_back(std::move(line));
  }
};

// The line that shows a rejection on stderr as it comes (a run behind `tail -F` may not end for
// days): for the first kShown of each reason, then one saying the rest are only counted; else "".
std::string rejection_line(const std::string& reason, const OutcomeList& lines) {
  if (lines.count <= OutcomeList::kShown) return "rejected " + reason + ": " + lines.first.back() + "\n";
  if (lines.count == OutcomeList::kShown + 1)
    return "rejected " + reason + ": more than " + std::to_string(OutcomeList::kShown) +
           " lines; the rest are counted in the summary, not printed\n";
  return "";
}

struct Outcomes {
  std::mutex mu;
  std::map<std::string, OutcomeList> rejected;  // reason -> "origin: detail"
  OutcomeList unacknowledged;
  std::size_t acked = 0;
  std::string gave_up;  // why the client first gave lines up ("" until it does)
};

// Why the client first gave lines up (no acknowledgement for give_up_after, a hello refused,
// ...), or "". A refused hello fails every later line without sending it: it ends the run too.
std::string client_gave_up(Outcomes& outcomes) {
  std::lock_guard lock(outcomes.mu);
  return outcomes.gave_up;
}

// Records one line's outcome under its origin; `print_now` is set to the line to show on stderr.
// True when this outcome is the client's first give-up.
bool record(Outcomes& outcomes, const std::string& origin, const client::LineOutcome& o, std::string& print_now) {
  std::lock_guard lock(outcomes.mu);
  if (o.acked()) {
    ++outcomes.acked;
    return false;
  }
  if (o.status == client::LineOutcome::Status::Rejected) {
    OutcomeList& lines = outcomes.rejected[o.reason];
    lines.add(origin + (o.detail.empty() ? "" : ": " + o.detail));
    print_now = rejection_line(o.reason, lines);
  } else {
    outcomes.unacknowledged.add(origin + " (" + o.reason + ")");
  }
  const bool refused_hello = client::failed_by_refused_hello(o);
  if (!outcomes.gave_up.empty() || (!refused_hello && o.status == client::LineOutcome::Status::Rejected)) return false;
  outcomes.gave_up = refused_hello && !o.detail.empty() ? o.detail : o.reason.empty() ? "given up" : o.reason;
  return true;
}

// The callback that records one line's outcome under its origin (the client's I/O thread). The
// line for stderr is written after the lock, in one write: a slow stderr never holds the reading
// thread's look at the outcomes. The first give-up stops the reading of the input, also while it
// waits for a line that may not come for hours.
client::ProducerClient::Callback recorder(Outcomes& outcomes, InputStop& reading, std::string origin) {
  return [&outcomes, &reading, origin = std::move(origin)](const client::LineOutcome& o) {
    std::string print_now;
    if (record(outcomes, origin, o, print_now)) reading.stop();
    if (!print_now.empty()) std::cerr << print_now << std::flush;
  };
}

// Where reading stopped after the client gave up ("" when the input was read to its end).
struct StoppedReading {
  std::string after;                  // the origin of the last line sent
  std::string why;                    // the client's reason for its first give-up, or the read error
  bool read_failed = false;           // an input could not be read to its end
  std::vector<std::string> not_read;  // inputs after the one being read
};

void print_stop(const StoppedReading& stop) {
  if (stop.after.empty()) return;
  std::cout << fmt::format("stopped reading after {}: {}; the lines after it were not sent\n", stop.after,
                           stop.read_failed ? stop.why : "the client gave up (" + stop.why + ")");
  if (!stop.not_read.empty()) std::cout << fmt::format("inputs not read: {}\n", fmt::join(stop.not_read, ", "));
}

void print_summary(const SendCommand& c, std::size_t sent, std::size_t inputs, const client::ProducerStats& stats, Outcomes& o) {
  std::size_t rejected = 0;
  for (const auto& [reason, lines] : o.rejected) rejected += lines.count;
  std::cout << fmt::format("sent {} lines from {} input(s) (format {}): acked {}, rejected {}, unacknowledged {} "
                           "({} reconnects, {} busy replies retried)\n",
                           sent, inputs, c.format, o.acked, rejected, o.unacknowledged.count, stats.reconnects, stats.busy);
  const auto list = [](const std::string& title, const OutcomeList& lines) {
    std::cout << title << " (" << lines.count << "):\n";
    for (const std::string& line : lines.first) std::cout << "  " << line << "\n";
    if (lines.count > lines.first.size()) std::cout << "  ... and " << lines.count - lines.first.size() << " more\n";
  };
  for (const auto& [reason, lines] : o.rejected) list("rejected " + reason, lines);
  if (o.unacknowledged.count > 0) list("unacknowledged (may or may not be stored; sending them again is safe)", o.unacknowledged);
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

bool InputReader::start() {
  started_ = true;
  std::string skipped, first;  // the blank lines before the first one (line numbers stay right)
  while (std::getline(in_, first) && blank(first)) skipped += first + "\n";
  if (blank(first)) return false;
  const bool may_be_array = first[first.find_first_not_of(" \t")] == '[';
  if (may_be_array && (!complete_json(first) || in_.peek() == std::char_traits<char>::eof())) {
    whole_ = split_input(name_, skipped + first + "\n" + read_all(in_));
    return true;
  }
  number_ = static_cast<std::size_t>(std::count(skipped.begin(), skipped.end(), '\n')) + 1;
  if (first.back() == '\r') first.pop_back();
  whole_.push_back({std::move(first), fmt::format("{}:{}", name_, number_)});
  return true;
}

bool InputReader::next(InputLine& line) {
  if (!started_ && !start()) return false;
  if (next_whole_ < whole_.size()) {
    line = std::move(whole_[next_whole_++]);
    return true;
  }
  for (std::string text; std::getline(in_, text);) {
    ++number_;
    if (blank(text)) continue;
    if (text.back() == '\r') text.pop_back();
    line = {std::move(text), fmt::format("{}:{}", name_, number_)};
    return true;
  }
  return false;
}

int run_send(const SendCommand& c, int standard_input) {
  const std::vector<std::string> inputs = c.inputs.empty() ? std::vector<std::string>{"-"} : c.inputs;
  InputStop reading;
  const std::vector<std::unique_ptr<OpenInput>> open = open_inputs(inputs, standard_input, reading);
  client::ProducerOptions options;
  options.socket_path = c.socket_path;
  options.format = c.format;
  options.max_in_flight = c.max_in_flight;
  options.give_up_after = std::chrono::duration_cast<std::chrono::milliseconds>(c.give_up_after);
  Outcomes outcomes;
  client::ProducerStats stats;
  std::size_t sent = 0;
  StoppedReading stop;
  {
    client::ProducerClient producer(options);
    for (const auto& input : open) {
      const std::string& name = input->name;
      std::istream* stream = input->stream.get();
      if (!stop.after.empty()) {
        stop.not_read.push_back(name);
        continue;
      }
      InputReader reader(name, *stream);
      std::string last_origin = name + " (before its first line)";
      for (InputLine line; stop.after.empty() && reader.next(line); ++sent) {
        if (reading.stopped()) break;  // read after the give-up (perhaps a line cut short): not sent
        last_origin = line.origin;
        producer.send(std::move(line.text), recorder(outcomes, reading, line.origin));
        // The first give-up ends the run: waiting give_up_after again for each later window of
        // max_in_flight lines stretched a dead daemon's 60 s into an hour for a large input.
        if (std::string why = client_gave_up(outcomes); !why.empty()) {
          stop.after = std::move(line.origin);
          stop.why = std::move(why);
        }
      }
      // The give-up came while the input was quiet: the reading stopped without a line after it.
      if (reading.stopped() && stop.after.empty()) {
        stop.after = std::move(last_origin);
        stop.why = client_gave_up(outcomes);
        continue;
      }
      // A read error ends the stream as end of input would: the rest of it was never sent.
      if (stream->bad() && stop.after.empty()) {
        stop.after = std::move(last_origin);
        stop.why = "reading " + name + " failed";
        stop.read_failed = true;
      }
    }
    // The client gives lines up after give_up_after without progress; after a give-up, the
    // lines in flight are given up at once.
    const bool gave_up = !stop.after.empty() && !stop.read_failed;
    producer.close(gave_up ? std::chrono::milliseconds(0) : std::chrono::milliseconds(std::chrono::hours(24)));
    stats = producer.stats();
  }
  print_summary(c, sent, inputs.size(), stats, outcomes);
  print_stop(stop);
  return outcomes.acked == sent && !stop.read_failed ? 0 : 1;
}

}  // namespace pm::ctl

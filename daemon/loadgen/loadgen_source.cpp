#include "daemon/loadgen/loadgen_source.h"

#include <bit>
#include <charconv>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include <fmt/format.h>
#include <simdjson.h>

namespace pm::loadgen {

namespace {

std::optional<double> number_field(simdjson::dom::element doc, const char* name) {
  simdjson::dom::element v;
  if (doc[name].get(v) != simdjson::SUCCESS) return std::nullopt;
  double d = 0;
  if (v.get_double().get(d) == simdjson::SUCCESS) return d;
  std::string_view s;
  if (v.get_string().get(s) == simdjson::SUCCESS) {
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
    if (ec == std::errc{} && end == s.data() + s.size()) return d;
  }
  return std::nullopt;
}

std::optional<std::string_view> string_field(simdjson::dom::element doc, const char* name) {
  std::string_view s;
  if (doc[name].get_string().get(s) != simdjson::SUCCESS) return std::nullopt;
  return s;
}

std::string hex_id(std::mt19937_64& rng, int hex_digits) {
  std::string out = "0x";
  while (static_cast<int>(out.size()) - 2 < hex_digits) fmt::format_to(std::back_inserter(out), "{:016x}", rng());
  out.resize(static_cast<std::size_t>(hex_digits) + 2);
  return out;
}

std::string token_id(std::mt19937_64& rng) {
  std::string out;
  while (out.size() < 77) fmt::format_to(std::back_inserter(out), "{:019d}", rng() % 10'000'000'000'000'000'000ull);
  out.resize(77);
  if (out[0] == '0') out[0] = '1';
  return out;
}

double uniform(std::mt19937_64& rng, double lo, double hi) {
  return lo + (hi - lo) * (static_cast<double>(rng() >> 11) * 0x1.0p-53);
}

double round_to(double v, int decimals) {
  const double f = decimals == 3 ? 1000.0 : 100.0;
  return static_cast<double>(static_cast<long long>(v * f + 0.5)) / f;
}

constexpr double kThresholds[] = {0.5, 0.6, 0.7, 0.8, 0.9, 0.95};

// `raw` with a backslash before every double quote and backslash, to embed it in a JSON string.
std::string escape_quotes(const std::string& raw) {
  std::string escaped;
  escaped.reserve(raw.size() + 64);
  for (char ch : raw) {
    if (ch == '"' || ch == '\\') escaped += '\\';
    escaped += ch;
  }
  return escaped;
}

}  // namespace

EventKey extract_key(std::string_view line) {
  static thread_local simdjson::dom::parser parser;
  EventKey key;
  simdjson::padded_string padded(line);
  simdjson::dom::element doc;
  if (parser.parse(padded).get(doc) != simdjson::SUCCESS) return key;
  const auto type = string_field(doc, "type");
  const auto cid = string_field(doc, "condition_id");
  if (!type || !cid) return key;
  if (*type == "trade") {
    const auto tid = string_field(doc, "trade_id");
    if (!tid) return key;
    key.kind = EventKind::Trade;
    key.condition_id = std::string(*cid);
    key.id = std::string(*tid);
  } else if (*type == "trigger") {
    const auto token = string_field(doc, "token_id");
    const auto threshold = number_field(doc, "threshold");
    if (!token || !threshold) return key;
    key.kind = EventKind::Trigger;
    key.condition_id = std::string(*cid);
    key.id = std::string(*token);
    key.threshold = static_cast<float>(*threshold);
  }
  return key;
}

std::unique_ptr<EventSource> EventSource::generated(const GeneratorConfig& config, std::optional<std::uint64_t> count,
                                                    bool keep_keys) {
  std::unique_ptr<EventSource> s(new EventSource());
  s->gen_ = config;
  s->count_ = count;
  s->keep_keys_ = keep_keys;
  s->rng_.seed(config.seed);
  if (config.conditions == 0) throw std::invalid_argument("--conditions must be at least 1");
  for (std::size_t i = 0; i < config.conditions; ++i) {
    s->conditions_.push_back(hex_id(s->rng_, 64));
    std::string a = token_id(s->rng_), b = token_id(s->rng_);
    s->tokens_.emplace_back(std::move(a), std::move(b));
  }
  s->chunks_ = std::make_unique<std::unique_ptr<std::atomic<std::uint8_t>[]>[]>(kMaxChunks);
  return s;
}

namespace {

// The whole file, read in one go into a string sized from its length (streaming it through an
// ostringstream cost ~1.6 s of CPU for the benchmark's 166 MB here, mostly page faults of the
// regrowing buffer, and still ran when profile.sh began sampling); a pipe is streamed.
std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read --input " + path);
  const std::streamoff size = in.seekg(0, std::ios::end) ? static_cast<std::streamoff>(in.tellg()) : -1;
  if (size < 0) {  // no length (a pipe): stream it
    in.clear();
    std::ostringstream buffer;
    buffer << in.rdbuf();
    return std::move(buffer).str();
  }
  std::string text(static_cast<std::size_t>(size), '\0');
  in.seekg(0);
  in.read(text.data(), size);
  if (in.gcount() != size) throw std::runtime_error("cannot read --input " + path + ": it shrank while being read");
  return text;
}

}  // namespace

std::unique_ptr<EventSource> EventSource::from_file(const std::string& path, std::optional<std::uint64_t> count,
                                                    bool keep_keys) {
  std::unique_ptr<EventSource> s(new EventSource());
  s->file_ = read_whole_file(path);
  s->from_file_ = true;
  s->count_ = count;
  s->keep_keys_ = keep_keys;
  s->find_file_lines();
  if (keep_keys) s->extract_file_keys();
  s->chunks_ = std::make_unique<std::unique_ptr<std::atomic<std::uint8_t>[]>[]>(kMaxChunks);
  return s;
}

std::unique_ptr<EventSource> EventSource::probes(const std::string& condition_id) {
  std::unique_ptr<EventSource> s(new EventSource());
  s->probe_condition_ = condition_id;
  s->keep_keys_ = true;
  s->chunks_ = std::make_unique<std::unique_ptr<std::atomic<std::uint8_t>[]>[]>(kMaxChunks);
  return s;
}

std::string EventSource::probe_trade_id(std::uint64_t index) { return fmt::format("{:012d}", index); }

void EventSource::find_file_lines() {
  // Empty lines are skipped; a last line without '\n' counts. Fixed before the run: connection
  // threads read lines through file_line() without the lock.
  std::size_t pos = 0;
  while (pos < file_.size()) {
    while (pos < file_.size() && (file_[pos] == '\n' || file_[pos] == '\r')) ++pos;
    if (pos >= file_.size()) break;
    std::size_t end = file_.find('\n', pos);
    if (end == std::string::npos) end = file_.size();
    if (count_ && file_lines_.size() >= *count_) break;
    file_lines_.emplace_back(pos, end - pos);
    pos = end + 1;
  }
}

void EventSource::extract_file_keys() {
  // Before the run, so the harness parses no JSON while it is being timed.
  file_keys_.reserve(file_lines_.size());
  for (std::size_t i = 0; i < file_lines_.size(); ++i) file_keys_.push_back(extract_key(file_line(i)));
  number_file_keys();
  keys_.reserve(file_keys_.size());  // filled while sending: no reallocation then
}

void EventSource::number_file_keys() {
  std::unordered_map<std::string, std::int32_t> trades, pairs, conditions;
  auto number = [](std::unordered_map<std::string, std::int32_t>& ids, std::string key) {
    return ids.emplace(std::move(key), static_cast<std::int32_t>(ids.size())).first->second;
  };
  for (const EventKey& k : file_keys_) {
    std::int32_t trade = -1, pair = -1, condition = -1;
    if (k.kind != EventKind::Other) {
      condition = number(conditions, k.condition_id);
      if (condition == static_cast<std::int32_t>(key_ids_.conditions.size())) key_ids_.conditions.push_back(k.condition_id);
    }
    if (k.kind == EventKind::Trade) trade = number(trades, k.condition_id + '\x1f' + k.id);
    if (k.kind == EventKind::Trigger)
      pair = number(pairs, k.condition_id + '\x1f' + std::to_string(std::bit_cast<std::uint32_t>(k.threshold)));
    key_ids_.trade.push_back(trade);
    key_ids_.pair.push_back(pair);
    key_ids_.condition.push_back(condition);
  }
  key_ids_.trades = trades.size();
  key_ids_.pairs = pairs.size();
}

EventSource::~EventSource() = default;

void EventSource::set_deadline(std::chrono::steady_clock::time_point deadline) {
  std::lock_guard lock(mu_);
  deadline_ = deadline;
}

bool EventSource::exhausted() const { return exhausted_.load(); }

bool EventSource::next(std::string& line, std::uint64_t& index) {
  std::lock_guard lock(mu_);
  if (exhausted_.load(std::memory_order_relaxed)) return false;
  if (stopped_.load(std::memory_order_relaxed) || (count_ && produced_.load(std::memory_order_relaxed) >= *count_) ||
      (deadline_ && std::chrono::steady_clock::now() >= *deadline_)) {
    exhausted_.store(true);
    return false;
  }
  index = produced_.load(std::memory_order_relaxed);
  if (!produce_locked(line)) {
    exhausted_.store(true);
    return false;
  }
  return true;
}

bool EventSource::produce_locked(std::string& line) {
  const std::uint64_t index = produced_.load(std::memory_order_relaxed);
  if (index >= (kMaxChunks << kChunkBits)) return false;
  EventKey key;
  if (from_file_) {
    if (index >= file_lines_.size()) return false;
    line.clear();  // the connection reads file_line(index)
    if (keep_keys_ && index < file_keys_.size()) key = std::move(file_keys_[index]);
  } else if (!probe_condition_.empty()) {
    line = probe_line_locked(index, key);
  } else {
    line = generate_locked(key);
  }
  if (keep_keys_) {
    auto& chunk = chunks_[index >> kChunkBits];
    if (!chunk) {
      chunk = std::make_unique<std::atomic<std::uint8_t>[]>(1ull << kChunkBits);
      for (std::uint64_t i = 0; i < (1ull << kChunkBits); ++i) chunk[i].store(0, std::memory_order_relaxed);
    }
    keys_.push_back(std::move(key));
  }
  produced_.store(index + 1);
  return true;
}

// Where a generated event happens: a condition, one of its two outcomes, and the event's number.
struct EventSource::Market {
  const std::string& condition;
  const std::string& token;
  const char* outcome;  // "Yes" or "No"
  int outcome_index;
  std::uint64_t n;  // events produced before this one
};

// The draws from rng_ happen in a fixed order (duplicate?, condition, outcome, trigger?, then the
// event's fields): the same seed gives the same lines.
std::string EventSource::generate_locked(EventKey& key) {
  if (const auto pick = pick_duplicate_locked()) {
    key = recent_keys_[*pick];
    return recent_trades_[*pick];
  }
  const Market m = pick_market_locked();
  if (gen_.trigger_share > 0 && uniform(rng_, 0, 1) < gen_.trigger_share) return trigger_line_locked(m, key);
  std::string out = trade_line_locked(m, key);
  if (gen_.dup_ratio > 0) remember_trade_locked(out, key);
  return out;
}

std::optional<std::size_t> EventSource::pick_duplicate_locked() {
  const bool dup = !recent_trades_.empty() && gen_.dup_ratio > 0 && uniform(rng_, 0, 1) < gen_.dup_ratio;
  if (!dup) return std::nullopt;
  return rng_() % recent_trades_.size();
}

EventSource::Market EventSource::pick_market_locked() {
  const std::size_t c = rng_() % conditions_.size();
  const int oi = static_cast<int>(rng_() & 1);
  return Market{conditions_[c], oi == 0 ? tokens_[c].first : tokens_[c].second, oi == 0 ? "Yes" : "No", oi,
                produced_.load(std::memory_order_relaxed)};
}

std::string EventSource::trigger_line_locked(const Market& m, EventKey& key) {
  const double threshold = kThresholds[rng_() % std::size(kThresholds)];
  const double price = round_to(uniform(rng_, threshold, 0.99), 3);
  const double size = round_to(uniform(rng_, 1, 5000), 2);
  const double score = round_to(uniform(rng_, 0, 1), 3);
  const std::int64_t ts_ms = (gen_.start_timestamp_s + static_cast<std::int64_t>(m.n / 100)) * 1000 +
                             static_cast<std::int64_t>(m.n % 100) * 10;
  std::string out;
  out.reserve(900);
  fmt::format_to(std::back_inserter(out),
                 R"({{"type":"trigger","token_id":"{}","condition_id":"{}","threshold":{},"trigger_timestamp":{},)"
                 R"("price":{},"size":{},"model_score":{},"model_version":"loadgen-1","outcome":"{}","outcome_index":{}}})",
                 m.token, m.condition, threshold, ts_ms, price, size, score, m.outcome, m.outcome_index);
  key.kind = EventKind::Trigger;
  key.condition_id = m.condition;
  key.id = m.token;
  key.threshold = static_cast<float>(threshold);
  return out;
}

std::string EventSource::trade_line_locked(const Market& m, EventKey& key) {
  const std::string tid = hex_id(rng_, 64);
  const std::string wallet = hex_id(rng_, 40);
  const double price = round_to(uniform(rng_, 0.01, 0.99), 3);
  const double size = round_to(uniform(rng_, 1, 5000), 2);
  const char* side = (rng_() & 1) ? "BUY" : "SELL";
  const std::int64_t ts = gen_.start_timestamp_s + static_cast<std::int64_t>(m.n / 100);
  std::string raw;
  fmt::format_to(std::back_inserter(raw),
                 R"({{"proxyWallet":"{}","side":"{}","asset":"{}","conditionId":"{}","size":{},"price":{},"timestamp":{},)"
                 R"("outcome":"{}","outcomeIndex":{},"transactionHash":"{}"}})",
                 wallet, side, m.token, m.condition, size, price, ts, m.outcome, m.outcome_index, tid);
  std::string out;
  out.reserve(900);
  fmt::format_to(std::back_inserter(out),
                 R"({{"type":"trade","condition_id":"{}","trade_id":"{}","token_id":"{}","price":{},"size":{},"side":"{}",)"
                 R"("timestamp":{},"outcome":"{}","outcome_index":{},"raw_json":"{}"}})",
                 m.condition, tid, m.token, price, size, side, ts, m.outcome, m.outcome_index, escape_quotes(raw));
  key.kind = EventKind::Trade;
  key.condition_id = m.condition;
  key.id = tid;
  return out;
}

std::string EventSource::probe_line_locked(std::uint64_t index, EventKey& key) {
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  key.kind = EventKind::Trade;
  key.condition_id = probe_condition_;
  key.id = probe_trade_id(index);
  return fmt::format(R"({{"type":"trade","condition_id":"{}","trade_id":"{}","token_id":"pm-visibility-probe","price":0.5,)"
                     R"("size":1,"side":"BUY","timestamp":{},"outcome":"Yes","outcome_index":0}})",
                     probe_condition_, key.id, now_s);
}

void EventSource::remember_trade_locked(const std::string& line, const EventKey& key) {
  if (recent_trades_.size() < 10'000) {
    recent_trades_.push_back(line);
    recent_keys_.push_back(key);
  } else {
    const std::size_t slot = rng_() % recent_trades_.size();
    recent_trades_[slot] = line;
    recent_keys_[slot] = key;
  }
}

void EventSource::produce_all_as_acked() {
  std::string line;
  std::uint64_t index = 0;
  while (next(line, index)) set_status(index, EventStatus::Acked);
}

}  // namespace pm::loadgen

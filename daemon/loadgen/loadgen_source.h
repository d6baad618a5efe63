#pragma once
// EventSource: what pm-loadgen sends, one protocol v1 line at a time, shared by every connection.
//
// Contract:
// - Two kinds of load: generated (deterministic for a seed: the same seed, conditions, trigger share and
//   dup ratio give the same sequence of lines and keys, whatever the number of connections or the
//   rate) or replayed from an NDJSON file (each non-empty line as is, in file order);
//   a third kind, probes(), makes the visibility probes' trades.
// - next() hands out each event once, with its index (0, 1, 2, ... in production order), until the
//   count is reached, the deadline passes, the file ends or stop() is called. Thread-safe.
// - With keep_keys, the key of every event handed out is recorded (trade: condition_id and
//   trade_id; trigger: token_id, condition_id, threshold as the REAL column holds it), and every
//   event has a status slot that the connections set (sent, acked, rejected). Lines that are not a
//   trade or a trigger get kind Other; verification ignores them.
// - Generated trades look like production ones (0x-prefixed 64-hex condition and trade ids, 77-digit
//   token ids, a raw_json copy shaped as the Polymarket data API) so that line sizes are realistic;
//   generated triggers draw (token, condition, threshold) from a small space so that G2 duplicates
//   (same and other token) occur.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace pm::loadgen {

enum class EventKind : std::uint8_t { Trade, Trigger, Other };

struct EventKey {
  EventKind kind = EventKind::Other;
  std::string condition_id;
  std::string id;        // trade_id (trade) or token_id (trigger)
  float threshold = 0;   // trigger only: the value a REAL column stores
};

// The key of one protocol line (kind Other when it is not a well-formed trade or trigger).
EventKey extract_key(std::string_view line);

enum class EventStatus : std::uint8_t { Unsent = 0, Sent = 1, Acked = 2, Rejected = 3 };

// Dense numbers for the keys of an input file's lines, computed when the file is loaded, so that
// what a run expects in PostgreSQL is counted without hashing strings while the run is timed.
// -1: the line is not a well-formed trade (or trigger).
struct KeyIds {
  std::vector<std::int32_t> trade;      // per line: its (condition_id, trade_id)
  std::vector<std::int32_t> pair;       // per line: its trigger's (condition_id, threshold as REAL)
  std::vector<std::int32_t> condition;  // per line: its condition_id
  std::vector<std::string> conditions;  // condition_id by number
  std::size_t trades = 0, pairs = 0;    // distinct keys
};

struct GeneratorConfig {
  std::uint64_t seed = 1;
  std::size_t conditions = 2000;
  double trigger_share = 0.0;
  double dup_ratio = 0.0;
  std::int64_t start_timestamp_s = 1'763'900'000;
};

class EventSource {
 public:
  static std::unique_ptr<EventSource> generated(const GeneratorConfig& config, std::optional<std::uint64_t> count,
                                                bool keep_keys);
  // Reads the whole file (throws std::runtime_error when it cannot); `count` limits the lines used.
  static std::unique_ptr<EventSource> from_file(const std::string& path, std::optional<std::uint64_t> count,
                                                bool keep_keys);
  // Visibility probes (--visibility-probes): small trades of `condition_id` whose trade_id is the
  // event's index as probe_trade_id() writes it, timestamped with the wall clock when produced;
  // keys kept. Unbounded: stop it with a deadline or stop().
  static std::unique_ptr<EventSource> probes(const std::string& condition_id);
  // The index zero-padded to 12 digits, so that text order is index order.
  static std::string probe_trade_id(std::uint64_t index);
  ~EventSource();

  // No event is handed out after this moment (for --duration).
  void set_deadline(std::chrono::steady_clock::time_point deadline);
  // The next event: false when exhausted. For --input, `line` is left empty (nothing is copied):
  // file_line(index) is the line.
  bool next(std::string& line, std::uint64_t& index);
  // Line `index` of the input file (a view into the loaded file, valid while the source lives).
  std::string_view file_line(std::uint64_t index) const { return std::string_view(file_).substr(file_lines_[index].first, file_lines_[index].second); }
  void stop() { stopped_.store(true); }
  bool exhausted() const;
  std::uint64_t produced() const { return produced_.load(); }
  // Every event at once, without sending (for --verify-only): hands out everything and marks it acked.
  void produce_all_as_acked();

  bool keeps_keys() const { return keep_keys_; }
  // Safe from any thread that learned `index` from the one next() gave it to (its slot exists
  // by then); a no-op without keep_keys.
  void set_status(std::uint64_t index, EventStatus s) {
    if (keep_keys_) slot(index).store(static_cast<std::uint8_t>(s), std::memory_order_relaxed);
  }
  // Valid after the connections have finished.
  const std::vector<EventKey>& keys() const { return keys_; }
  // For --input with keys kept (else null); line i is event index i. Any thread.
  const KeyIds* key_ids() const { return from_file_ && keep_keys_ ? &key_ids_ : nullptr; }
  EventStatus status(std::uint64_t index) const {
    return static_cast<EventStatus>(slot(index).load(std::memory_order_relaxed));
  }

 private:
  struct Market;  // a generated event's condition and outcome (loadgen_source.cpp)

  EventSource() = default;
  // At load (from_file), before any other thread sees the source.
  void find_file_lines();
  void extract_file_keys();
  void number_file_keys();
  // REQUIRES: mu_ held (they run inside next()): they use rng_, the generator's recent trades
  // and the produced_ count.
  bool produce_locked(std::string& line);
  std::string generate_locked(EventKey& key);
  std::optional<std::size_t> pick_duplicate_locked();  // a recent trade to send again, or none
  Market pick_market_locked();
  std::string trigger_line_locked(const Market& m, EventKey& key);
  std::string trade_line_locked(const Market& m, EventKey& key);
  std::string probe_line_locked(std::uint64_t index, EventKey& key);
  void remember_trade_locked(const std::string& line, const EventKey& key);  // for later duplicates

  bool keep_keys_ = false;
  std::optional<std::uint64_t> count_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> exhausted_{false};
  std::atomic<std::uint64_t> produced_{0};
  mutable std::mutex mu_;

  // Replay.
  bool from_file_ = false;
  std::string file_;
  std::vector<std::pair<std::size_t, std::size_t>> file_lines_;  // (offset, length) of every line, found at load

  // Visibility probes: their condition_id (empty otherwise).
  std::string probe_condition_;

  // Generation.
  GeneratorConfig gen_;
  std::mt19937_64 rng_;
  std::vector<std::string> conditions_;
  std::vector<std::pair<std::string, std::string>> tokens_;  // two per condition
  std::vector<std::string> recent_trades_;                   // for duplicates
  std::vector<EventKey> recent_keys_;

  // Status slots in fixed chunks, allocated (under mu_) before their indexes are handed out, so
  // that a slot never moves while a connection writes it.
  static constexpr std::uint64_t kChunkBits = 16;
  static constexpr std::uint64_t kMaxChunks = 1 << 16;
  std::atomic<std::uint8_t>& slot(std::uint64_t index) const {
    return chunks_[index >> kChunkBits][index & ((1ull << kChunkBits) - 1)];
  }
  std::vector<EventKey> keys_;
  std::vector<EventKey> file_keys_;  // --input with keys kept: the key of every line, read at load
  KeyIds key_ids_;
  std::unique_ptr<std::unique_ptr<std::atomic<std::uint8_t>[]>[]> chunks_;
};

}  // namespace pm::loadgen

#include "daemon/loadgen/loadgen_verify.h"

#include <bit>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include <pqxx/pqxx>

#include "daemon/loadgen/loadgen_connection.h"

namespace pm::loadgen {

namespace {

enum State : std::uint8_t { kNone = 0, kRejected = 1, kInDoubt = 2, kAcked = 3 };

State state_of(EventStatus s) {
  switch (s) {
    case EventStatus::Acked: return kAcked;
    case EventStatus::Rejected: return kRejected;
    case EventStatus::Sent: return kInDoubt;
    case EventStatus::Unsent: return kNone;
  }
  return kNone;
}

std::string trade_key(const std::string& cid, const std::string& tid) { return cid + '\x1f' + tid; }
std::string pair_key(const std::string& cid, float threshold) {
  return cid + '\x1f' + std::to_string(std::bit_cast<std::uint32_t>(threshold));
}

struct PairExpectation {
  State state = kNone;
  std::set<std::string> tokens;  // tokens whose trigger for this pair was acked or may have been
  float threshold = 0;
  std::string condition_id;
};

struct Expectation {
  std::unordered_map<std::string, State> trades;
  std::unordered_map<std::string, PairExpectation> pairs;
  std::set<std::string> conditions;
  std::size_t acked_trades = 0, in_doubt_trades = 0, acked_pairs = 0;
  std::string conditions_array;  // a PostgreSQL text[] literal
};

// Appends one element to a PostgreSQL array literal being built ("{" already there).
void append_element(std::string& out, const std::string& v) {
  if (out.size() > 1) out += ',';
  out += '"';
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

std::string array_literal(const std::set<std::string>& values) {
  std::string out = "{";
  for (const auto& v : values) append_element(out, v);
  return out + '}';
}

Expectation expectation(const EventSource& source) {
  Expectation x;
  const auto& keys = source.keys();
  for (std::uint64_t i = 0; i < keys.size(); ++i) {
    const EventKey& k = keys[i];
    const State s = state_of(source.status(i));
    if (k.kind == EventKind::Other || s == kNone) continue;
    x.conditions.insert(k.condition_id);
    if (k.kind == EventKind::Trade) {
      State& slot = x.trades[trade_key(k.condition_id, k.id)];
      slot = std::max(slot, s);
    } else {
      PairExpectation& p = x.pairs[pair_key(k.condition_id, k.threshold)];
      p.state = std::max(p.state, s);
      p.threshold = k.threshold;
      p.condition_id = k.condition_id;
      if (s != kRejected) p.tokens.insert(k.id);
    }
  }
  for (const auto& [key, s] : x.trades) {
    x.acked_trades += s == kAcked;
    x.in_doubt_trades += s == kInDoubt;
  }
  for (const auto& [key, p] : x.pairs) x.acked_pairs += p.state == kAcked;
  x.conditions_array = array_literal(x.conditions);
  return x;
}

std::string printable(const std::string& key) {
  std::string out = key;
  for (char& c : out)
    if (c == '\x1f') c = ' ';
  return out;
}

// Counts the problems of one kind; room() is true for the first `max` of them (those listed).
class Listed {
 public:
  explicit Listed(std::size_t max) : max_(max) {}
  bool room() { return n_++ < max_; }

 private:
  std::size_t max_, n_ = 0;
};

using StoredTrades = std::unordered_map<std::string, std::size_t>;             // trade key -> rows
using StoredPairs = std::unordered_map<std::string, std::vector<std::string>>;  // pair -> tokens stored

StoredTrades stored_trades(pqxx::read_transaction& tx, const Expectation& x, VerifyReport& r) {
  StoredTrades stored;
  stored.reserve(x.trades.size() + 16);
  const auto trades = tx.exec_params(
      "SELECT condition_id, trade_id FROM polymarket_trades WHERE condition_id = ANY($1::text[])", x.conditions_array);
  for (const auto& row : trades) ++stored[trade_key(row[0].c_str(), row[1].c_str())];
  r.trades_stored = trades.size();
  return stored;
}

// Acked trades not stored; stored trades stored more than once, or never sent, or only refused.
void check_trades(const Expectation& x, const StoredTrades& stored, std::size_t max_listed, VerifyReport& r) {
  Listed missing(max_listed), extra(max_listed), dup(max_listed);
  for (const auto& [key, s] : x.trades) {
    if (s != kAcked) continue;
    if (stored.find(key) == stored.end()) {
      ++r.trades_missing;
      if (missing.room()) r.problems.push_back("missing trade (acked, not stored): " + printable(key));
    }
  }
  for (const auto& [key, n] : stored) {
    if (n > 1) {
      ++r.trades_duplicated;
      if (dup.room()) r.problems.push_back("trade stored " + std::to_string(n) + " times: " + printable(key));
    }
    const auto it = x.trades.find(key);
    if (it == x.trades.end() || it->second == kRejected) {
      ++r.trades_extra;
      if (extra.room())
        r.problems.push_back(std::string("extra trade (") + (it == x.trades.end() ? "never sent" : "refused") +
                             "): " + printable(key));
    }
  }
}

StoredPairs stored_pairs(pqxx::read_transaction& tx, const Expectation& x, VerifyReport& r) {
  StoredPairs rows_by_pair;
  const auto triggers = tx.exec_params(
      "SELECT token_id, condition_id, threshold FROM polymarket_first_triggers WHERE condition_id = ANY($1::text[])",
      x.conditions_array);
  r.trigger_rows = triggers.size();
  for (const auto& row : triggers)
    rows_by_pair[pair_key(row[1].c_str(), row[2].as<float>())].push_back(row[0].c_str());
  return rows_by_pair;
}

void check_missing_pairs(const Expectation& x, const StoredPairs& rows_by_pair, std::size_t max_listed,
                         VerifyReport& r) {
  Listed missing(max_listed);
  for (const auto& [key, p] : x.pairs) {
    const std::string what = p.condition_id + " threshold " + std::to_string(p.threshold);
    const auto it = rows_by_pair.find(key);
    if (p.state == kAcked && it == rows_by_pair.end()) {
      ++r.trigger_pairs_missing;
      if (missing.room()) r.problems.push_back("missing first trigger (acked, not stored): " + what);
    }
  }
}

// Stored pairs with more than one row (G2), never sent or only refused, or from a token that
// sent no trigger for the pair.
void check_stored_pairs(const Expectation& x, const StoredPairs& rows_by_pair, std::size_t max_listed,
                        VerifyReport& r) {
  Listed g2(max_listed), wrong_token(max_listed), extra(max_listed);
  for (const auto& [key, tokens] : rows_by_pair) {
    const auto it = x.pairs.find(key);
    const std::string what = printable(key);
    if (tokens.size() > 1) {
      ++r.trigger_g2_violations;
      if (g2.room())
        r.problems.push_back("G2 broken: " + std::to_string(tokens.size()) + " first triggers for one (condition, threshold): " +
                             (it != x.pairs.end() ? it->second.condition_id + " threshold " + std::to_string(it->second.threshold) : what));
    }
    if (it == x.pairs.end() || it->second.state == kRejected) {
      ++r.trigger_extra;
      if (extra.room()) r.problems.push_back("extra first trigger (never sent or refused): " + what);
      continue;
    }
    for (const auto& token : tokens) {
      if (!it->second.tokens.count(token)) {
        ++r.trigger_wrong_token;
        if (wrong_token.room())
          r.problems.push_back("first trigger from a token that sent none for it: " + token + " on " + it->second.condition_id);
      }
    }
  }
}

// One read of this run's rows against what it expects; every count and problem line in `r`.
VerifyReport check_once(const Expectation& x, pqxx::connection& conn, std::size_t max_listed) {
  VerifyReport r;
  r.trades_acked = x.acked_trades;
  r.trades_in_doubt = x.in_doubt_trades;
  r.trigger_pairs_acked = x.acked_pairs;
  pqxx::read_transaction tx(conn);
  check_trades(x, stored_trades(tx, x, r), max_listed, r);
  const StoredPairs rows_by_pair = stored_pairs(tx, x, r);
  check_missing_pairs(x, rows_by_pair, max_listed, r);
  check_stored_pairs(x, rows_by_pair, max_listed, r);
  r.ok = r.trades_missing == 0 && r.trades_duplicated == 0 && r.trades_extra == 0 && r.trigger_pairs_missing == 0 &&
         r.trigger_g2_violations == 0 && r.trigger_wrong_token == 0 && r.trigger_extra == 0;
  return r;
}

}  // namespace

VerifyReport verify(const EventSource& source, const std::string& database_url, std::chrono::milliseconds timeout,
                    std::size_t max_listed) {
  const std::int64_t start = steady_ns();
  const Expectation x = expectation(source);
  pqxx::connection conn(database_url);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    VerifyReport r = check_once(x, conn, max_listed);
    const bool only_missing = r.trades_duplicated == 0 && r.trades_extra == 0 && r.trigger_g2_violations == 0 &&
                              r.trigger_wrong_token == 0 && r.trigger_extra == 0;
    if (r.ok || !only_missing || std::chrono::steady_clock::now() >= deadline) {
      r.seconds = static_cast<double>(steady_ns() - start) / 1e9;
      return r;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the writer is still applying: poll interval
  }
}

namespace {

// What wait_applied waits for: the distinct acked trade keys and trigger pairs, the conditions of
// every line sent, and the hints whose trade key no other acked line carries (a duplicate's key may
// have been visible long before its line was applied).
struct WaitTarget {
  std::size_t acked_trades = 0, acked_pairs = 0;
  std::string conditions_array;
  std::vector<std::uint64_t> unique_hints;
};

// From the keys' dense numbers: arrays and counters only (it runs inside the timed window).
WaitTarget numbered_target(const EventSource& source, const KeyIds& ids, const std::vector<std::uint64_t>& hints) {
  WaitTarget w;
  std::vector<std::uint32_t> acked_lines(ids.trades, 0);
  std::vector<std::uint8_t> pair_acked(ids.pairs, 0), condition_sent(ids.conditions.size(), 0);
  const std::uint64_t n = std::min<std::uint64_t>(source.keys().size(), ids.trade.size());
  for (std::uint64_t i = 0; i < n; ++i) {
    const EventStatus s = source.status(i);
    if (s == EventStatus::Unsent) continue;
    if (ids.condition[i] >= 0) condition_sent[static_cast<std::size_t>(ids.condition[i])] = 1;
    if (s != EventStatus::Acked) continue;
    if (ids.trade[i] >= 0 && acked_lines[static_cast<std::size_t>(ids.trade[i])]++ == 0) ++w.acked_trades;
    if (ids.pair[i] >= 0 && !pair_acked[static_cast<std::size_t>(ids.pair[i])]) {
      pair_acked[static_cast<std::size_t>(ids.pair[i])] = 1;
      ++w.acked_pairs;
    }
  }
  std::set<std::string> conditions;
  for (std::size_t c = 0; c < condition_sent.size(); ++c)
    if (condition_sent[c]) conditions.insert(ids.conditions[c]);
  w.conditions_array = array_literal(conditions);
  for (std::uint64_t i : std::set<std::uint64_t>(hints.begin(), hints.end()))
    if (i < n && ids.trade[i] >= 0 && source.status(i) == EventStatus::Acked &&
        acked_lines[static_cast<std::size_t>(ids.trade[i])] == 1)
      w.unique_hints.push_back(i);
  return w;
}

// The same from the keys themselves (generated events: their keys are known only after the run).
WaitTarget keyed_target(const EventSource& source, const std::vector<std::uint64_t>& hints) {
  const Expectation x = expectation(source);
  WaitTarget w{x.acked_trades, x.acked_pairs, x.conditions_array, {}};
  std::map<std::string, std::uint64_t> hint_of;  // trade key -> a hint carrying it
  for (std::uint64_t i : hints) {
    const EventKey& k = source.keys()[i];
    if (k.kind == EventKind::Trade && source.status(i) == EventStatus::Acked) hint_of.emplace(trade_key(k.condition_id, k.id), i);
  }
  std::map<std::string, int> acked_lines;
  for (std::uint64_t i = 0; i < source.keys().size(); ++i) {
    const EventKey& k = source.keys()[i];
    if (k.kind != EventKind::Trade || source.status(i) != EventStatus::Acked) continue;
    const std::string key = trade_key(k.condition_id, k.id);
    if (hint_of.count(key)) ++acked_lines[key];
  }
  for (const auto& [key, n] : acked_lines)
    if (n == 1) w.unique_hints.push_back(hint_of.at(key));
  return w;
}

// The unique hints' keys as two parallel text[] literals: condition ids, trade ids.
struct HintArrays {
  std::string condition_ids = "{", trade_ids = "{";
  std::size_t size = 0;
};

HintArrays hint_arrays(const EventSource& source, const WaitTarget& x) {
  HintArrays h;
  for (std::uint64_t i : x.unique_hints) {
    append_element(h.condition_ids, source.keys()[i].condition_id);
    append_element(h.trade_ids, source.keys()[i].id);
  }
  h.condition_ids += '}';
  h.trade_ids += '}';
  h.size = x.unique_hints.size();
  return h;
}

void prepare_wait_queries(pqxx::connection& conn) {
  conn.prepare("hints",
               "SELECT count(*) FROM unnest($1::text[], $2::text[]) AS k(c, t) "
               "WHERE EXISTS (SELECT 1 FROM polymarket_trades p WHERE p.condition_id = k.c AND p.trade_id = k.t)");
  conn.prepare("applied",
               "SELECT (SELECT count(*) FROM polymarket_trades WHERE condition_id = ANY($1::text[])), "
               "(SELECT count(*) FROM polymarket_first_triggers WHERE condition_id = ANY($1::text[]))");
}

// Polls every `poll` until every hint is stored: the steady-clock time at which the query that
// saw them started; 0 when there is no hint to wait for; nullopt when `deadline` passed first.
std::optional<std::int64_t> wait_for_hints(pqxx::connection& conn, const HintArrays& h,
                                           std::chrono::steady_clock::time_point deadline, std::chrono::milliseconds poll) {
  while (h.size > 0) {
    const std::int64_t t = steady_ns();
    pqxx::nontransaction tx(conn);
    if (tx.exec_prepared1("hints", h.condition_ids, h.trade_ids)[0].as<std::size_t>() >= h.size) return t;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(poll);  // polling interval of the measurement
  }
  return 0;
}

}  // namespace

AppliedWait wait_applied(const EventSource& source, const std::vector<std::uint64_t>& hints,
                         const std::string& database_url, std::chrono::milliseconds timeout, std::chrono::milliseconds poll) {
  const WaitTarget x = source.key_ids() ? numbered_target(source, *source.key_ids(), hints) : keyed_target(source, hints);
  const AppliedWait none{0, x.acked_trades + x.acked_pairs};
  const HintArrays h = hint_arrays(source, x);

  pqxx::connection conn(database_url);
  prepare_wait_queries(conn);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const std::optional<std::int64_t> hints_seen = wait_for_hints(conn, h, deadline, poll);
  if (!hints_seen) return none;
  for (bool first = true;; first = false) {
    const std::int64_t t = steady_ns();  // what the query counts was visible when it started
    pqxx::nontransaction tx(conn);
    const auto row = tx.exec_prepared1("applied", x.conditions_array);
    if (row[0].as<std::size_t>() >= x.acked_trades && row[1].as<std::size_t>() >= x.acked_pairs)
      return {first && *hints_seen ? *hints_seen : t, x.acked_trades + x.acked_pairs};
    if (std::chrono::steady_clock::now() >= deadline) return none;
    std::this_thread::sleep_for(std::max(poll, std::chrono::milliseconds(100)));  // the hints misled: slow, full polls
  }
}

}  // namespace pm::loadgen

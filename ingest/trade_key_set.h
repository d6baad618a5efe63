#pragma once
// TradeKeySet: the (condition_id, trade_id) keys of the trades of one batch, as views into that
// batch's events. The writer hands a batch's set to the batches that overlap it, so a trade seen in
// an earlier batch still in flight is treated as the duplicate it is instead of racing it into
// polymarket_trades. The events must outlive the set (the set never copies the strings).
// Immutable once built; any thread may read it.
#include <functional>
#include <span>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "ingest/event_queue.h"

namespace pm {

class TradeKeySet {
 public:
  explicit TradeKeySet(std::span<const QueuedEvent> events);

  bool contains(std::string_view condition_id, std::string_view trade_id) const {
    return keys_.count({condition_id, trade_id}) > 0;
  }
  std::size_t size() const { return keys_.size(); }

 private:
  using Key = std::pair<std::string_view, std::string_view>;
  struct Hash {
    std::size_t operator()(const Key& k) const noexcept {
      const std::size_t a = std::hash<std::string_view>{}(k.first);
      return a ^ (std::hash<std::string_view>{}(k.second) + 0x9e3779b97f4a7c15ull + (a << 6) + (a >> 2));
    }
  };
  std::unordered_set<Key, Hash> keys_;
};

}  // namespace pm

#pragma once
// TradeKeySet: a set of trade keys (condition_id, trade_id) as views, looked up by the hash each
// TradeRow carries, so a key is hashed once however many sets it meets. The strings must outlive
// the set. Not thread-safe while being filled; any number of readers once filled.
#include <cstddef>
#include <string_view>
#include <unordered_set>

#include "repos/trade_row.h"

namespace pm {

class TradeKeySet {
 public:
  TradeKeySet() = default;
  void reserve(std::size_t n) { keys_.reserve(n); }
  // True if the key was not in the set yet.
  bool insert(const TradeRow& row) { return keys_.insert(Key{row.condition_id, row.trade_id, row.key_hash}).second; }
  bool insert(std::string_view condition_id, std::string_view trade_id) {
    return keys_.insert(Key{condition_id, trade_id, trade_key_hash(condition_id, trade_id)}).second;
  }
  bool contains(const TradeRow& row) const { return keys_.count(Key{row.condition_id, row.trade_id, row.key_hash}) > 0; }
  bool empty() const { return keys_.empty(); }
  std::size_t size() const { return keys_.size(); }

 private:
  struct Key {
    std::string_view condition_id;
    std::string_view trade_id;
    std::size_t hash;
    // The stored hash first: the set keeps no hash codes of its own, so a bucket's other keys are
    // compared too, and those nearly always differ in hash.
    bool operator==(const Key& o) const {
      return hash == o.hash && condition_id == o.condition_id && trade_id == o.trade_id;
    }
  };
  struct Hash {
    std::size_t operator()(const Key& k) const noexcept { return k.hash; }
  };
  std::unordered_set<Key, Hash> keys_;
};

}  // namespace pm

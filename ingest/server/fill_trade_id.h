#pragma once
// The trade id of a fill whose payload has none (clob-ws-market, data-api-trades; docs/protocol.md
// "Trade ids"): `<transaction hash>:<16 lower-case hex digits>`, the digits being the FNV-1a 64
// hash of the fill's canonical fields joined with '|':
//   token id | side (upper-case) | price | size | timestamp (in the source's unit) [| wallet]
// with price and size rendered in their shortest round-trip form (std::to_chars), so ".48",
// "0.48" and 0.48 give one id. The same fill sent twice gets the same id (and is stored once);
// fills of one transaction that differ in any of these fields get different ids. Limit: two
// fills equal in every one of these fields collapse into one row. Pure functions; any thread.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pm {

std::uint64_t fnv1a_64(std::string_view bytes);

struct FillFields {
  std::string_view token_id;
  std::string_view side;  // upper-case
  double price = 0;
  double size = 0;
  std::int64_t timestamp = 0;               // as the source sent it (its own unit)
  std::optional<std::string_view> wallet;   // data-api-trades: proxyWallet
};

// The '|'-joined canonical text the hash is taken of.
std::string canonical_fill_text(const FillFields& fill);
std::string fill_trade_id(std::string_view transaction_hash, const FillFields& fill);

}  // namespace pm

#include "ingest/server/fill_trade_id.h"

#include <charconv>

namespace pm {

namespace {

void append_shortest(std::string& out, double value) {
  char buffer[32];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, ec == std::errc{} ? end : buffer);
}

}  // namespace

std::uint64_t fnv1a_64(std::string_view bytes) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

namespace {

// Hex as Ethereum writes it in either case (checksummed addresses): one spelling for the id.
std::string lower_case(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

}  // namespace

std::string canonical_fill_text(const FillFields& fill) {
  std::string text;
  text.reserve(fill.token_id.size() + 64 + (fill.wallet ? fill.wallet->size() : 0));
  text.append(fill.token_id).append(1, '|').append(fill.side).append(1, '|');
  append_shortest(text, fill.price);
  text += '|';
  append_shortest(text, fill.size);
  text += '|';
  text += std::to_string(fill.timestamp);
  if (fill.wallet) text.append(1, '|').append(lower_case(*fill.wallet));  // checksummed or not: one wallet
  return text;
}

std::string fill_trade_id(std::string_view transaction_hash, const FillFields& fill) {
  static constexpr char kHex[] = "0123456789abcdef";
  const std::uint64_t hash = fnv1a_64(canonical_fill_text(fill));
  std::string id;
  id.reserve(transaction_hash.size() + 17);
  id.append(lower_case(transaction_hash)).append(1, ':');
  for (int shift = 60; shift >= 0; shift -= 4) id += kHex[(hash >> shift) & 0xf];
  return id;
}

}  // namespace pm

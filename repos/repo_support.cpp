#include "repos/repo_support.h"

#include "repos/util/clock.h"

namespace pm::detail {

std::string write_iso_or_now(const std::string& text, const char* column) {
  if (text.empty()) return now_iso();
  auto canonical = canonical_iso(text);
  if (!canonical)
    throw std::invalid_argument(std::string(column) + ": '" + text + "' is not an ISO-8601 time");
  return *canonical;
}

std::optional<std::string> write_iso(const std::optional<std::string>& text, const char* column) {
  if (!text) return std::nullopt;
  auto canonical = canonical_iso(*text);
  if (!canonical)
    throw std::invalid_argument(std::string(column) + ": '" + *text + "' is not an ISO-8601 time");
  return canonical;
}

void check_limit(int limit) {
  if (limit < 0) throw std::invalid_argument("limit must not be negative");
}

}  // namespace pm::detail

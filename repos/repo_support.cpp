#include "repos/repo_support.h"

#include <cmath>

#include "repos/pg_errors.h"
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

void require_finite(double value, const char* column) {
  if (!std::isfinite(value))
    throw RefusedValueError(std::string(column) + ": " + (std::isnan(value) ? "nan" : value > 0 ? "inf" : "-inf") +
                            " is not a finite number; a REAL value here must be one");
}

void require_finite(const std::optional<double>& value, const char* column) {
  if (value) require_finite(*value, column);
}

void require_finite(std::initializer_list<std::pair<std::optional<double>, const char*>> values) {
  for (const auto& [value, column] : values) require_finite(value, column);
}

}  // namespace pm::detail

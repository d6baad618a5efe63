#pragma once
// Small helpers shared by the repositories: result rows to models.
#include <optional>
#include <vector>

#include <pqxx/result>

#include "repos/models.h"

namespace pm {

// A nullable field as std::optional (libpqxx 6.4 has no optional conversion here).
template <class T>
std::optional<T> optional_field(const pqxx::field& field) {
  if (field.is_null()) return std::nullopt;
  return field.as<T>();
}

template <class Model>
std::vector<Model> to_models(const pqxx::result& result) {
  std::vector<Model> out;
  out.reserve(result.size());
  for (const auto& row : result) out.push_back(from_row<Model>(row));
  return out;
}

template <class Model>
std::optional<Model> to_optional_model(const pqxx::result& result) {
  if (result.empty()) return std::nullopt;
  return from_row<Model>(result[0]);
}

}  // namespace pm

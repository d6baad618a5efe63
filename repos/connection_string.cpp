#include "repos/connection_string.h"

#include <algorithm>
#include <regex>
#include <utility>
#include <vector>

namespace pm {

namespace {

bool is_url(const std::string& url) { return url.find("://") != std::string::npos; }

// libpq takes whole seconds; round up so a bound is never shortened.
std::string whole_seconds(std::chrono::milliseconds d) {
  return std::to_string(std::max<long long>(1, (d.count() + 999) / 1000));
}

}  // namespace

bool sets_parameter(const std::string& url, const std::string& key) {
  const std::regex pattern(is_url(url) ? "[?&]" + key + "=" : "(^|\\s)" + key + "\\s*=");
  return std::regex_search(url, pattern);
}

std::string connection_string(const DatabaseConfig& config) {
  std::vector<std::pair<std::string, std::string>> params{{"connect_timeout", whole_seconds(config.connect_timeout)}};
  if (config.keepalives) {
    params.insert(params.end(), {{"keepalives", "1"},
                                 {"keepalives_idle", std::to_string(config.keepalives_idle.count())},
                                 {"keepalives_interval", std::to_string(config.keepalives_interval.count())},
                                 {"keepalives_count", std::to_string(config.keepalives_count)}});
  } else {
    params.emplace_back("keepalives", "0");
  }
  std::string out = config.url;
  for (const auto& [key, value] : params) {
    if (sets_parameter(config.url, key)) continue;
    if (is_url(config.url))
      out += (out.find('?') == std::string::npos ? "?" : "&") + key + "=" + value;
    else
      out += " " + key + "=" + value;
  }
  return out;
}

}  // namespace pm

#include "repos/database_config.h"

#include <algorithm>
#include <cstdlib>
#include <regex>
#include <stdexcept>

namespace pm {

DatabaseConfig DatabaseConfig::from_env() {
  DatabaseConfig config;
  if (const char* url = std::getenv("DATABASE_URL"); url != nullptr && *url != '\0') {
    config.url = url;
  }
  return config;
}

void DatabaseConfig::validate() const {
  auto fail = [](const std::string& what) { throw std::invalid_argument("DatabaseConfig: " + what); };
  if (url.empty()) fail("url is empty");
  if (min_connections < 0) fail("min_connections must be >= 0");
  if (max_connections < 1) fail("max_connections must be >= 1");
  if (min_connections > max_connections) fail("min_connections must be <= max_connections");
  if (statement_timeout.count() < 0) fail("statement_timeout must be >= 0");
  if (acquire_timeout.count() < 0) fail("acquire_timeout must be >= 0");
  if (reconnect_max_attempts < 1) fail("reconnect_max_attempts must be >= 1");
  if (retry_max_attempts < 1) fail("retry_max_attempts must be >= 1");
  if (reconnect_multiplier < 1.0) fail("reconnect_multiplier must be >= 1.0");
  if (retry_multiplier < 1.0) fail("retry_multiplier must be >= 1.0");
  if (connect_timeout.count() <= 0) fail("connect_timeout must be > 0");
  if (health_check_timeout.count() <= 0) fail("health_check_timeout must be > 0");
  if (keepalives && (keepalives_idle.count() < 1 || keepalives_interval.count() < 1 || keepalives_count < 1))
    fail("keepalives_idle, keepalives_interval and keepalives_count must be >= 1");
  if (tcp_user_timeout.count() < 0) fail("tcp_user_timeout must be >= 0 (0: not set)");
  if (reconnect_initial_delay.count() < 0 || retry_initial_delay.count() < 0)
    fail("delays must be >= 0");
}

std::vector<std::pair<std::size_t, std::size_t>> password_spans(const std::string& text) {
  // postgresql://user:secret@host/..., anywhere in the text (an error message may quote a URL).
  static const std::regex url_password(R"([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s'"]*:([^@/\s'"]*)@)");
  // URL query parameter: ?password=secret
  static const std::regex query_password(R"([?&]password=([^&\s'"]*))", std::regex::icase);
  // libpq's key = value form, with or without spaces around '=': password=secret, password = secret,
  // password='sec ret' (single quotes, backslash escapes).
  static const std::regex kv_password(R"((?:^|[\s'"])password\s*=\s*('(?:[^'\\]|\\.)*'?|[^\s'"&]+))", std::regex::icase);
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  for (const std::regex* re : {&url_password, &query_password, &kv_password}) {
    for (auto it = std::sregex_iterator(text.begin(), text.end(), *re); it != std::sregex_iterator(); ++it) {
      const auto& secret = (*it)[1];
      if (secret.length() > 0)
        spans.emplace_back(static_cast<std::size_t>(secret.first - text.begin()), static_cast<std::size_t>(secret.length()));
    }
  }
  std::sort(spans.begin(), spans.end());
  return spans;
}

std::string redact_url(const std::string& url) {
  std::string out;
  std::size_t at = 0;
  for (const auto& [begin, length] : password_spans(url)) {
    if (begin < at) continue;  // overlapping matches of two forms
    out.append(url, at, begin - at);
    out += "***";
    at = begin + length;
  }
  out.append(url, at, std::string::npos);
  return out;
}

}  // namespace pm

#include "repos/database_config.h"

#include "repos/connection_string.h"
#include "repos/known_passwords.h"

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

namespace {

// The passwords the patterns find, as written: URL userinfo (libpq ends it at '@' or '/'), the
// ?password= parameter (ends at '&'), and libpq's key = value form (an unquoted value ends at a
// blank; a quoted one at its closing quote, backslash escapes inside).
std::vector<std::pair<std::size_t, std::size_t>> written_password_spans(const std::string& text) {
  static const std::regex url_password(R"([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s'"]*:([^@/\s]*)@)");
  static const std::regex query_password(R"([?&]password=([^&\s]*))", std::regex::icase);
  static const std::regex kv_password(R"((?:^|[\s'"])password\s*=\s*('(?:[^'\\]|\\.)*'?|\S+))", std::regex::icase);
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  for (const std::regex* re : {&url_password, &query_password, &kv_password}) {
    for (auto it = std::sregex_iterator(text.begin(), text.end(), *re); it != std::sregex_iterator(); ++it) {
      const auto& secret = (*it)[1];
      if (secret.length() > 0)
        spans.emplace_back(static_cast<std::size_t>(secret.first - text.begin()), static_cast<std::size_t>(secret.length()));
    }
  }
  return spans;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX sequences decoded; a '%' not followed by two hex digits is kept.
std::string percent_decoded(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hex_digit(text[i + 1]) >= 0 && hex_digit(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_digit(text[i + 1]) * 16 + hex_digit(text[i + 2])));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

// A quoted key = value password without its quotes and escapes.
std::string unquoted(const std::string& value) {
  if (value.empty() || value.front() != '\'') return value;
  std::string out;
  for (std::size_t i = 1; i < value.size() && value[i] != '\''; ++i) {
    if (value[i] == '\\' && i + 1 < value.size()) ++i;
    out.push_back(value[i]);
  }
  return out;
}

}  // namespace

std::vector<std::pair<std::size_t, std::size_t>> password_spans(const std::string& text) {
  std::vector<std::pair<std::size_t, std::size_t>> spans = written_password_spans(text);
  const auto known = known_password_spans(text);
  spans.insert(spans.end(), known.begin(), known.end());
  std::sort(spans.begin(), spans.end());
  return spans;
}

void remember_passwords_of(const std::string& conninfo) {
  std::vector<std::string> passwords;
  for (const auto& [begin, length] : written_password_spans(conninfo)) {
    const std::string written = conninfo.substr(begin, length);
    passwords.insert(passwords.end(), {written, unquoted(written), percent_decoded(written)});
  }
  if (const auto parameters = parameters_set_by(conninfo); parameters && parameters->count("password"))
    passwords.push_back(parameters->at("password"));
  remember_passwords(passwords);
}

std::string redact_url(const std::string& url) {
  std::string out;
  std::size_t at = 0;  // everything before it is copied or masked
  bool masking = false;
  for (const auto& [begin, length] : password_spans(url)) {
    if (masking && begin <= at) {  // overlaps or touches the last span: its mask covers this one too
      at = std::max(at, begin + length);
      continue;
    }
    out.append(url, at, begin - at);
    out += "***";
    at = begin + length;
    masking = true;
  }
  out.append(url, at, std::string::npos);
  return out;
}

}  // namespace pm

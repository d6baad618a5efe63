#include "repos/database_config.h"

#include "repos/connection_string.h"
#include "repos/known_passwords.h"

#include <algorithm>
#include <cstdlib>
#include <regex>
#include <stdexcept>
#include <string_view>

namespace pm {

DatabaseConfig DatabaseConfig::from_env() {
  DatabaseConfig config;
  if (const char* url = std::getenv("DATABASE_URL"); url != nullptr && *url != '\0') {
    config.url = url;
  }
  // The daemon's own variable (its environment file), so a bot that shares it reads in the unit
  // the daemon writes in.
  if (const char* unit = std::getenv(kTradeTimestampUnitVariable); unit != nullptr && *unit != '\0') {
    const auto parsed = parse_timestamp_unit(unit);
    if (!parsed)
      throw std::invalid_argument(std::string(kTradeTimestampUnitVariable) + " must be ms or s ('" + unit + "' given)");
    config.trade_timestamp_unit = *parsed;
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
  if (idle_in_transaction_timeout.count() < 0) fail("idle_in_transaction_timeout must be >= 0 (0: the server's own)");
  if (reconnect_initial_delay.count() < 0 || retry_initial_delay.count() < 0)
    fail("delays must be >= 0");
}

namespace {

// URL userinfo password: from the first ':' after "scheme://user" to the LAST '@' of the
// whitespace-free text. libpq ends userinfo at the first '@' and looks for it only before the first
// '/', so a password holding '/' or '@' is read as host, port or database name: masking up to the
// last '@' covers what the writer meant (and perhaps some of the host or query: too much, never too
// little).
const std::regex& url_password() {
  static const std::regex re(R"([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s'"]*:(\S*)@)");
  return re;
}

// Matches of `re` in `text`, group 1 as (offset, length); empty ones left out.
std::vector<std::pair<std::size_t, std::size_t>> group_spans(const std::string& text, const std::regex& re) {
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
    const auto& secret = (*it)[1];
    if (secret.length() > 0)
      spans.emplace_back(static_cast<std::size_t>(secret.first - text.begin()), static_cast<std::size_t>(secret.length()));
  }
  return spans;
}

// The passwords the patterns find, as written: URL userinfo (url_password above), the ?password=
// parameter (ends at '&'), and libpq's key = value form (an unquoted value ends at a blank; a
// quoted one at its closing quote, backslash escapes inside). `sslpassword` (the passphrase of the
// client's TLS key) is a secret of the same kind, in either form.
std::vector<std::pair<std::size_t, std::size_t>> written_password_spans(const std::string& text) {
  static const std::regex query_password(R"([?&](?:ssl)?password=([^&\s]*))", std::regex::icase);
  static const std::regex kv_password(R"((?:^|[\s'"])(?:ssl)?password\s*=\s*('(?:[^'\\]|\\.)*'?|\S+))", std::regex::icase);
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  for (const std::regex* re : {&url_password(), &query_password, &kv_password}) {
    const auto found = group_spans(text, *re);
    spans.insert(spans.end(), found.begin(), found.end());
  }
  return spans;
}

// The pieces of a URL userinfo password between the characters that end a URL part for libpq
// (/ @ ? & = , :): what libpq reads as port, host, database or query when the password holds one,
// and may quote bare in an error ('invalid integer value "top" for connection option "port"').
// Pieces shorter than kShortestPiece are left out: masking every "a" or "9" in every message would
// make them unreadable, and such a piece tells little of the password.
std::vector<std::string> url_password_pieces(const std::string& written) {
  constexpr std::size_t kShortestPiece = 3;
  std::vector<std::string> pieces;
  std::size_t begin = 0;
  for (std::size_t end = 0; end <= written.size(); ++end) {
    if (end < written.size() && std::string_view("/@?&=,:").find(written[end]) == std::string_view::npos) continue;
    if (end - begin >= kShortestPiece && end - begin < written.size()) pieces.push_back(written.substr(begin, end - begin));
    begin = end + 1;
  }
  return pieces;
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
  for (const auto& [begin, length] : group_spans(conninfo, url_password())) {
    for (const std::string& piece : url_password_pieces(conninfo.substr(begin, length)))
      passwords.insert(passwords.end(), {piece, percent_decoded(piece)});
  }
  if (const auto parameters = parameters_set_by(conninfo)) {
    for (const char* secret : {"password", "sslpassword"})
      if (parameters->count(secret)) passwords.push_back(parameters->at(secret));
  }
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

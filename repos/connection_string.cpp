#include "repos/connection_string.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <utility>
#include <vector>

namespace pm {

namespace {

bool is_url(const std::string& url) { return url.find("://") != std::string::npos; }

// Whether the URL has a query ("?key=value...") as libpq reads it: userinfo, which may hold a '?',
// runs to the first '@' when no '/' comes before that '@'; only a '?' after it starts the query.
bool has_query(const std::string& url) {
  const std::size_t authority = url.find("://") + 3;
  const std::size_t end_of_userinfo = url.find_first_of("@/", authority);
  const bool userinfo = end_of_userinfo != std::string::npos && url[end_of_userinfo] == '@';
  return url.find('?', userinfo ? end_of_userinfo + 1 : authority) != std::string::npos;
}

// libpq takes whole seconds; round up so a bound is never shortened.
std::string whole_seconds(std::chrono::milliseconds d) {
  return std::to_string(std::max<long long>(1, (d.count() + 999) / 1000));
}

}  // namespace

std::optional<std::map<std::string, std::string>> parameters_set_by(const std::string& url) {
  PQconninfoOption* options = PQconninfoParse(url.c_str(), nullptr);
  if (options == nullptr) return std::nullopt;
  std::map<std::string, std::string> parameters;
  for (const PQconninfoOption* o = options; o->keyword != nullptr; ++o)
    if (o->val != nullptr) parameters[o->keyword] = o->val;
  PQconninfoFree(options);
  return parameters;
}

bool sets_parameter(const std::string& url, const std::string& key) {
  const auto parameters = parameters_set_by(url);
  return parameters && parameters->count(key) > 0;
}

std::optional<std::chrono::seconds> connect_timeout_of(const std::string& connection_string) {
  const auto parameters = parameters_set_by(connection_string);
  if (!parameters || parameters->count("connect_timeout") == 0) return std::nullopt;
  // As libpq's parse_int_param: a base-10 int, blanks around it allowed, nothing else.
  const std::string& text = parameters->at("connect_timeout");
  char* end = nullptr;
  errno = 0;
  const long seconds = std::strtol(text.c_str(), &end, 10);
  if (end == text.c_str() || errno != 0 || seconds > INT_MAX || seconds < INT_MIN) return std::nullopt;
  while (*end != '\0' && std::isspace(static_cast<unsigned char>(*end))) ++end;
  if (*end != '\0' || seconds <= 0) return std::nullopt;
  return std::chrono::seconds(std::max(seconds, 2L));
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
  if (config.tcp_user_timeout.count() > 0)
    params.emplace_back("tcp_user_timeout", std::to_string(config.tcp_user_timeout.count()));
  const auto given = parameters_set_by(config.url);
  std::string out = config.url;
  for (const auto& [key, value] : params) {
    if (given && given->count(key) > 0) continue;
    if (is_url(config.url))
      out += (has_query(out) ? "&" : "?") + key + "=" + value;
    else
      out += " " + key + "=" + value;
  }
  return out;
}

}  // namespace pm

#pragma once
// The libpq connection string every connection of a Database uses (pooled or a health probe):
// the configured URL (or key=value string) plus a client-side connect_timeout, TCP keepalives and
// tcp_user_timeout from DatabaseConfig, so a vanished or black-holed server is noticed instead of
// waited on for the kernel's defaults (minutes to hours). Keepalives cover an idle connection;
// tcp_user_timeout covers data sent and never acknowledged (a query or COPY in flight when the host
// vanished), which keepalives never probe. A parameter the URL sets itself wins. Pure functions;
// any thread. The result carries the URL's password: print it only through redact_url().
#include <chrono>
#include <map>
#include <optional>
#include <string>

#include "repos/database_config.h"

namespace pm {

std::string connection_string(const DatabaseConfig& config);

// The parameters a URL (postgresql://...?key=v) or key=value string sets itself, by keyword, as
// libpq's parser reads them (quoting and percent-encoding undone, no defaults added); nullopt when
// libpq cannot parse it (the connection attempt reports that).
std::optional<std::map<std::string, std::string>> parameters_set_by(const std::string& url);

// True when the URL or key=value string sets parameter `key` itself.
bool sets_parameter(const std::string& url, const std::string& key);

// The connect_timeout libpq applies to each host of this string, as libpq reads it (whole seconds,
// at least 2); nullopt when it waits without bound (none set, 0 or less) or refuses the value
// (not an int: the connection attempt says so).
std::optional<std::chrono::seconds> connect_timeout_of(const std::string& connection_string);

}  // namespace pm

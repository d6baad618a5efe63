#pragma once
// The libpq connection string every connection of a Database uses (pooled or a health probe):
// the configured URL (or key=value string) plus a client-side connect_timeout and TCP keepalives
// from DatabaseConfig, so a vanished or black-holed server is noticed instead of waited on for the
// kernel's defaults (minutes to hours). A parameter the URL sets itself wins. Pure function; any
// thread. The result carries the URL's password: print it only through redact_url().
#include <string>

#include "repos/database_config.h"

namespace pm {

std::string connection_string(const DatabaseConfig& config);

// True when the URL (postgresql://...?key=v) or key=value string sets parameter `key` itself.
bool sets_parameter(const std::string& url, const std::string& key);

}  // namespace pm

#include "repos/database_config.h"

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
  if (reconnect_initial_delay.count() < 0 || retry_initial_delay.count() < 0)
    fail("delays must be >= 0");
}

std::string redact_url(const std::string& url) {
  // postgresql://user:secret@host/... -> postgresql://user:***@host/...
  static const std::regex url_password(R"(^([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@]*):[^@/]*@)");
  // key=value form: password=secret or password='sec ret'
  static const std::regex kv_password(R"((password\s*=\s*)('([^'\\]|\\.)*'|\S+))",
                                      std::regex::icase);
  // URL query parameter: ?password=secret
  static const std::regex query_password(R"(([?&]password=)[^&]*)", std::regex::icase);
  std::string out = std::regex_replace(url, url_password, "$1:***@");
  out = std::regex_replace(out, query_password, "$1***");
  if (out.find("://") == std::string::npos) out = std::regex_replace(out, kv_password, "$1***");
  return out;
}

}  // namespace pm

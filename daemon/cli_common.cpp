#include "daemon/cli_common.h"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace pm {

namespace {

// Masks `scheme://user:password@` and `password=value` inside one argument.
void mask_password(char* arg) {
  const std::size_t n = std::strlen(arg);
  std::string view(arg, n);
  if (auto scheme = view.find("://"); scheme != std::string::npos) {
    const std::size_t at = view.find('@', scheme + 3);
    const std::size_t colon = view.find(':', scheme + 3);
    if (at != std::string::npos && colon != std::string::npos && colon < at) {
      for (std::size_t i = colon + 1; i < at; ++i) arg[i] = '*';
    }
  }
  for (std::size_t pos = view.find("password="); pos != std::string::npos;
       pos = view.find("password=", pos + 1)) {
    for (std::size_t i = pos + 9; i < n && arg[i] != ' ' && arg[i] != '&'; ++i) arg[i] = '*';
  }
}

}  // namespace

void scrub_argv_passwords(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) mask_password(argv[i]);
}

std::optional<std::string> resolve_database_url(const std::string& explicit_url,
                                                const std::string& url_file) {
  if (!explicit_url.empty()) return explicit_url;
  if (!url_file.empty()) {
    std::ifstream in(url_file);
    if (!in) throw std::runtime_error("cannot read --database-url-file " + url_file);
    std::string line;
    std::getline(in, line);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty()) throw std::runtime_error("--database-url-file " + url_file + " is empty");
    return line;
  }
  if (const char* env = std::getenv("DATABASE_URL"); env != nullptr && *env != '\0')
    return std::string(env);
  return std::nullopt;
}

}  // namespace pm

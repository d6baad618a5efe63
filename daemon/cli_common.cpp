#include "daemon/cli_common.h"

#include "repos/database_config.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

extern char** environ;  // the process's environment block (POSIX)

namespace pm {

namespace {

// Masks, in place, every password form redact_url() knows inside one argument.
void mask_password(char* arg) {
  const std::string text(arg);
  for (const auto& [begin, length] : password_spans(text))
    for (std::size_t i = begin; i < begin + length; ++i) arg[i] = '*';
}

}  // namespace

void scrub_environment_passwords() {
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string text(*entry);
    for (const char* name : {"DATABASE_URL=", "PM_INGESTD_DATABASE_URL="}) {
      if (text.rfind(name, 0) != 0) continue;
      remember_passwords_of(text.substr(std::strlen(name)));
      mask_password(*entry);
    }
  }
}

namespace {

std::optional<std::string> database_url_given(const std::string& explicit_url, const std::string& url_file) {
  if (!explicit_url.empty()) return explicit_url;
  if (!url_file.empty()) {
    errno = 0;
    std::ifstream in(url_file);
    if (!in)
      throw UsageError("cannot read --database-url-file " + url_file + (errno != 0 ? std::string(": ") + std::strerror(errno) : ""));
    std::string line;
    std::getline(in, line);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty()) throw UsageError("--database-url-file " + url_file + " is empty");
    return line;
  }
  if (const char* env = std::getenv("DATABASE_URL"); env != nullptr && *env != '\0')
    return std::string(env);
  return std::nullopt;
}

}  // namespace

long long require_between(const std::string& option, long long value, long long least, long long most, const std::string& unit) {
  if (value < least || value > most)
    throw UsageError("--" + option + " must be between " + std::to_string(least) + " and " + std::to_string(most) +
                     (unit.empty() ? "" : " " + unit) + " (" + std::to_string(value) + " given)");
  return value;
}

void scrub_argv_passwords(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    // `--database-url=password=s host=h`: the value is a conninfo of its own, whose key = value
    // password no pattern finds behind "--option=". Remembered, it is masked like any known one.
    const std::string arg(argv[i]);
    if (const std::size_t eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos)
      remember_passwords_of(arg.substr(eq + 1));
    mask_password(argv[i]);
  }
}

bool names_a_replay_checkpoint(const std::string& instance_id) { return instance_id.rfind("replay", 0) == 0; }

std::optional<std::string> resolve_database_url(const std::string& explicit_url, const std::string& url_file) {
  std::optional<std::string> url = database_url_given(explicit_url, url_file);
  if (url) remember_passwords_of(*url);  // masked wherever an error quotes it, from now on
  return url;
}

}  // namespace pm

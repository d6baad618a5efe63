#include "repos/known_passwords.h"

#include <mutex>
#include <set>

namespace pm {

namespace {

struct KnownPasswords {
  std::mutex mu;
  std::set<std::string> passwords;
};

KnownPasswords& known() {
  static KnownPasswords* instance = new KnownPasswords;  // never destroyed: used until exit
  return *instance;
}

}  // namespace

void remember_passwords(const std::vector<std::string>& passwords) {
  KnownPasswords& k = known();
  std::lock_guard lock(k.mu);
  for (const std::string& p : passwords)
    if (!p.empty()) k.passwords.insert(p);
}

std::vector<std::pair<std::size_t, std::size_t>> known_password_spans(const std::string& text) {
  KnownPasswords& k = known();
  std::lock_guard lock(k.mu);
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  for (const std::string& p : k.passwords)
    for (std::size_t at = text.find(p); at != std::string::npos; at = text.find(p, at + 1)) spans.emplace_back(at, p.size());
  return spans;
}

}  // namespace pm

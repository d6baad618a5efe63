#include "repos/name_denial.h"

#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>

#include <algorithm>
#include <utility>
#include <vector>

namespace pm {

namespace {

// The names glibc's search tries for `host`: (name, domain), domain nullptr for the name as given.
std::vector<std::pair<std::string, const char*>> names_tried(const res_state state, const std::string& host) {
  const auto dots = static_cast<unsigned>(std::count(host.begin(), host.end(), '.'));
  const bool trailing_dot = !host.empty() && host.back() == '.';
  const bool as_given_first = dots >= state->ndots || trailing_dot;
  std::vector<std::pair<std::string, const char*>> names;
  if (as_given_first) names.emplace_back(host, nullptr);
  const bool searches = !trailing_dot && ((dots == 0 && (state->options & RES_DEFNAMES)) ||
                                          (dots > 0 && (state->options & RES_DNSRCH)));
  if (searches)
    for (char* const* domain = state->dnsrch; *domain != nullptr; ++domain) names.emplace_back(host, *domain);
  if (!as_given_first) names.emplace_back(host, nullptr);
  return names;
}

enum class Answer { Denied, NoRecord, Other };

Answer ask(const res_state state, const std::string& name, const char* domain, int type) {
  unsigned char answer[512];
  if (::res_nquerydomain(state, name.c_str(), domain, ns_c_in, type, answer, sizeof answer) >= 0) return Answer::Other;
  if (state->res_h_errno == HOST_NOT_FOUND) return Answer::Denied;
  if (state->res_h_errno == NO_DATA) return Answer::NoRecord;
  return Answer::Other;  // no answer, a server failure or refusal: nothing is known
}

}  // namespace

bool name_servers_deny(const std::string& host) {
  struct __res_state state {};
  if (::res_ninit(&state) != 0) return false;
  bool denied = true;
  for (const auto& [name, domain] : names_tried(&state, host)) {
    const Answer v4 = ask(&state, name, domain, ns_t_a);
    if (v4 == Answer::Denied) continue;
    if (v4 == Answer::Other || ask(&state, name, domain, ns_t_aaaa) == Answer::Other) {
      denied = false;
      break;
    }
  }
  ::res_nclose(&state);
  return denied;
}

}  // namespace pm

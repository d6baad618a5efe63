#pragma once
// addresses_by: a host name's numeric addresses (getaddrinfo, as libpq looks them up: any family,
// stream sockets), waited for only until a deadline. getaddrinfo itself cannot be bounded (the
// resolver's own timeouts and attempts, seconds per name server), so the lookup runs on a thread
// of its own that outlives a caller who gave up; callers asking for the same name while its lookup
// is under way wait for that one instead of starting another, so a name server that never
// answers costs one thread per name, not one per call. Any thread; the lookups are shared state
// of the process, kept until each finishes. Throws std::system_error when no thread can be had.
//
// The process also keeps each name's last good answer. answer_by() serves it when the fresh
// lookup is late or the name servers fail (no answer, a server failure), as resolvers serve stale
// answers when the authorities cannot be reached (RFC 8767): a database whose address did not
// change stays reachable through a name-server outage. A lookup after which the name servers
// themselves deny the name (name_denial.h: no such name, or no IPv4 nor IPv6 address, under every
// name tried) forgets its last answer; a last answer is never served after that, nor once it is
// older than kLastGoodAnswerMaxAge.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pm {

// How long a name's last good answer may stand in: RFC 8767 suggests one to three days; a DNS
// outage over a weekend should not stop the writer.
inline constexpr std::chrono::hours kLastGoodAnswerMaxAge{72};

struct HostAddresses {
  bool finished = false;               // false: the lookup had not finished by the deadline
  std::vector<std::string> addresses;  // getaddrinfo's order (e.g. "::1", "127.0.0.1")
  std::string error;                   // why there are none (gai_strerror), when finished without
  bool stale = false;                  // answer_by: the fresh lookup failed or was late; these are the last good ones
};

namespace detail {
struct Lookup;
}

// One name's lookup: joins the one under way or starts it, at construction (returns at once). The
// handle keeps the result once it is in, however long after it is asked for.
class HostLookup {
 public:
  explicit HostLookup(const std::string& host);
  // The fresh answer, when the lookup finishes by the deadline (finished = false otherwise).
  HostAddresses wait_until(std::chrono::steady_clock::time_point deadline) const;
  // The fresh answer, or else the name's last good one (stale = true) when the lookup is late or
  // failed for want of an answer (not for "no such name"). When there is a last good answer, the
  // fresh one is waited for only half the time to the deadline, leaving the rest to connect.
  HostAddresses answer_by(std::chrono::steady_clock::time_point deadline) const;

 private:
  std::string host_;
  std::shared_ptr<detail::Lookup> lookup_;
};

// How many answers answer_by() has served stale in this process (for a metric).
std::uint64_t stale_answers_served();

inline HostAddresses addresses_by(const std::string& host, std::chrono::steady_clock::time_point deadline) {
  return HostLookup(host).wait_until(deadline);
}

}  // namespace pm

#pragma once
// addresses_by: a host name's numeric addresses (getaddrinfo, as libpq looks them up: any family,
// stream sockets), waited for only until a deadline. getaddrinfo itself cannot be bounded (the
// resolver's own timeouts and attempts, seconds per name server), so the lookup runs on a thread
// of its own that outlives a caller who gave up; callers asking for the same name while its lookup
// is under way wait for that one instead of starting another, so a name server that never
// answers costs one thread per name, not one per call. Any thread; the lookups are shared state
// of the process, kept until each finishes. Throws std::system_error when no thread can be had.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace pm {

struct HostAddresses {
  bool finished = false;               // false: the lookup had not finished by the deadline
  std::vector<std::string> addresses;  // getaddrinfo's order (e.g. "::1", "127.0.0.1")
  std::string error;                   // why there are none (gai_strerror), when finished without
};

namespace detail {
struct Lookup;
}

// One name's lookup: joins the one under way or starts it, at construction (returns at once). The
// handle keeps the result once it is in, however long after it is asked for.
class HostLookup {
 public:
  explicit HostLookup(const std::string& host);
  HostAddresses wait_until(std::chrono::steady_clock::time_point deadline) const;

 private:
  std::shared_ptr<detail::Lookup> lookup_;
};

inline HostAddresses addresses_by(const std::string& host, std::chrono::steady_clock::time_point deadline) {
  return HostLookup(host).wait_until(deadline);
}

}  // namespace pm

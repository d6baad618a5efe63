#pragma once
// with_host_addresses: a libpq connection string whose host names are looked up in advance, within
// a deadline (host_lookup.h, all of them at once), so that connecting does no lookup of its own:
// libpq's getaddrinfo waits out the resolver's timeouts (5 s a try per name server by default),
// which no connect_timeout or health-check bound covers, and keeps no answer for the next
// connection. Each host that resolved becomes one entry per address (host=name, hostaddr=address,
// its port repeated), in the order libpq would try them; the name stays in host= for TLS
// verification, .pgpass and authentication.
// - A name whose lookup is late or gets no answer gets its last good addresses in this process,
//   if any (HostLookup::answer_by): a name-server outage does not cut the database off.
// - Otherwise a name not resolved by the deadline is left out, as libpq skips a host it cannot look
//   up; none left throws.
// - Once a host is ready, the lookups of the hosts after it get half the time left (libpq would try
//   the ready one first), so one silent name server does not hold up a working host.
// - Strings that name no host to look up (numeric addresses, socket directories, hostaddr= given,
//   no host) come back unchanged, and so do those whose hosts the environment decides (a service,
//   PGSERVICE, PGHOSTADDR; PGHOST is libpq's to look up, unbounded).
// Any thread. The result carries the password like its input: print it only through redact_url().
#include <chrono>
#include <stdexcept>
#include <string>

namespace pm {

// No host name resolved by the deadline; what() names each host and why, never a password.
class HostLookupFailed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws HostLookupFailed, or std::system_error when no lookup thread can be had.
std::string with_host_addresses(const std::string& connection_string, std::chrono::steady_clock::time_point deadline);

}  // namespace pm

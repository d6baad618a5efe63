#pragma once
// with_host_addresses: a libpq connection string whose host names are looked up in advance, within
// a deadline (host_lookup.h), so that connecting does no lookup of its own: libpq's getaddrinfo
// waits out the resolver's timeouts (5 s a try per name server by default), which neither
// connect_timeout nor a health check's bound covers. Each looked-up host becomes one entry per
// address (host=name, hostaddr=address, its port repeated), in the order libpq would try them;
// the name stays in host= for TLS verification and authentication. A name that does not resolve
// is left for libpq to fail and report as before. Strings naming no host to look up (numeric
// addresses, socket directories, hostaddr= given, no host) come back unchanged. A name taken from
// the environment (PGHOST) is not covered. Pure but for the lookups; any thread. The result
// carries the password like its input: print it only through redact_url().
#include <chrono>
#include <stdexcept>
#include <string>

namespace pm {

// A host name's lookup did not finish by the deadline; what() names the host, never a password.
class HostLookupTimeout : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws HostLookupTimeout, or std::system_error when no lookup thread can be had.
std::string with_host_addresses(const std::string& connection_string, std::chrono::steady_clock::time_point deadline);

}  // namespace pm

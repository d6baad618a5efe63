#pragma once
// probe_server: "does the server answer SELECT 1 now?", answered within a bound whatever the
// network does. It opens its own libpq connection (never a pooled one, which a caller may hold or
// which may hang on a black-holed socket), drives the connection start-up and the query
// non-blocking with poll() against one deadline, and closes the connection. A refused port fails
// at once; a server that accepts but never answers, or packets that vanish, fail at the deadline.
// Host names are looked up first, within the bound, a name's last good answer standing in when
// the name servers do not answer (addressed_connection_string.h; the lookups under way and those
// answers are the only state shared between calls). Never throws; any thread.
#include <chrono>
#include <string>

namespace pm {

bool probe_server(const std::string& connection_string, std::chrono::milliseconds timeout) noexcept;

}  // namespace pm

#pragma once
// Unix stream sockets by path: the client-side helpers the daemon (its listening socket and the
// stale-socket probe), pm-loadgen and the tests share. Stateless, any thread.
#include <sys/un.h>

#include <string>

namespace pm {

// Fills `addr` with the address of the socket at `path`; false, with errno EINVAL for an empty path
// or ENAMETOOLONG for one that does not fit in sun_path (with its terminating NUL). Nothing is cut.
bool unix_socket_address(const std::string& path, sockaddr_un& addr);

// A connected socket (close-on-exec), or -1 with errno set (ENAMETOOLONG for a path that does not
// fit in sockaddr_un). `nonblocking` sets O_NONBLOCK after the connect.
int connect_unix_socket(const std::string& path, bool nonblocking = false);

}  // namespace pm

#pragma once
// Connecting to a Unix stream socket by path: the one client-side helper the daemon (stale-socket
// probe), pm-loadgen and the tests share. Stateless, any thread.
#include <string>

namespace pm {

// A connected socket (close-on-exec), or -1 with errno set (ENAMETOOLONG for a path that does not
// fit in sockaddr_un). `nonblocking` sets O_NONBLOCK after the connect.
int connect_unix_socket(const std::string& path, bool nonblocking = false);

}  // namespace pm

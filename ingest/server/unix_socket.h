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

// Whether something accepts on the socket file at `path`, by a connect that does not wait: 0 when
// it connected (closed again at once), else connect()'s errno: ECONNREFUSED when nobody listens
// (a stale file), ENOENT when the file is gone, EAGAIN when a listener's backlog is full (in use,
// not accepting), EACCES when the file may not be written, and so on.
int probe_unix_socket(const std::string& path);

}  // namespace pm

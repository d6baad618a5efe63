#include "ingest/server/socket_file.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>

namespace pm {

bool SocketFile::record(const std::string& path) {
  struct stat st {};
  if (path.empty() || ::lstat(path.c_str(), &st) != 0) return false;
  path_ = path;
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  recorded_ = true;
  return true;
}

std::string SocketFile::bound_path(int listen_fd) {
  sockaddr_un addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 || addr.sun_family != AF_UNIX) return "";
  const std::size_t path_bytes = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
  if (path_bytes == 0 || addr.sun_path[0] == '\0') return "";  // unnamed, or abstract
  return std::string(addr.sun_path, ::strnlen(addr.sun_path, path_bytes));
}

bool SocketFile::still_ours() const {
  if (!recorded_) return true;
  struct stat st {};
  return ::lstat(path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == dev_ && st.st_ino == ino_;
}

}  // namespace pm

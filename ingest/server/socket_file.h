#pragma once
// SocketFile: the file through which producers reach the daemon's listening socket, and whether
// that path still leads there. A running daemon keeps accepting on its socket after the file is
// removed or replaced (`rm`, a restart of pm-ingestd.socket under the running service, a second
// daemon started on the same path after a removal): producers then connect to nothing or to
// another socket while the daemon looks healthy. Recorded once at start (the file's device and
// inode, read with lstat), compared on demand.
//
// Contract:
// - record() after bind(); an empty path (an abstract or unnamed inherited socket) records
//   nothing, and such a socket is always "ours" (there is no file to lose).
// - still_ours() may be called from any thread after record(); it is one lstat().
#include <sys/types.h>

#include <string>

namespace pm {

class SocketFile {
 public:
  // Records the file at `path` as the socket's. False (nothing recorded, still_ours() stays true)
  // when it cannot be read: the caller logs that.
  bool record(const std::string& path);
  // The bound path of a listening socket (an inherited one: systemd's ListenStream=), or "" for an
  // abstract or unnamed socket.
  static std::string bound_path(int listen_fd);

  const std::string& path() const { return path_; }
  // True while `path` is the file recorded (or nothing was recorded).
  bool still_ours() const;

 private:
  std::string path_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  bool recorded_ = false;
};

}  // namespace pm

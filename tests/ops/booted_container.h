#pragma once
// BootedContainer: a real systemd, PID 1 of its own namespaces, booted by systemd-nspawn from this
// machine's own OS tree: the root a tmpfs, /usr the host's (read-only), /etc the host's under a
// writable layer thrown away at the end, a network of its own (loopback only; or the host's, on
// request), nothing registered
// with machined (none runs here). It boots in about half a second. For tests of the project's
// systemd units under a real service manager: boot order, RuntimeDirectory=, the sandboxing.
//
// Contract:
// - Needs root and systemd-nspawn (package systemd-container, scripts/setup.sh). started() says
//   whether a container came up at all (a test skips without one: why() says why); booted()
//   whether its boot then settled ("running" or "degraded"; a test fails without it: why() has
//   nspawn's console output and the jobs still waiting, a unit of the test's among them).
// - systemd-sysusers runs at its boot whatever the host's /etc/.updated says (a sysusers.extra
//   credential), so the sysusers.d files bound in create their users.
// - Files are bound in read-only before boot (`binds`: "host-path:container-path"), and `wants`
//   units are started by the boot (systemd.wants=), as enabled units are. The host's PostgreSQL
//   and Prometheus units are masked inside (with own_network false they would take the host's ports).
// - run() executes a shell command inside as root (nsenter into every namespace of PID 1).
// - One at a time on the machine (an flock held from before the boot to after the power-off): the
//   containers' systemds share the host's cgroup v1 hierarchy, and two at once disturbed each
//   other (`systemctl kill` failed with EIO on the other's cgroup).
// - The destructor powers it off and waits; nspawn is killed if it has not ended in 30 s, and
//   when the thread that made it ends (the test binary killed: setpriv --pdeathsig).
// For one test's thread.
#include <string>
#include <vector>

#include "tests/ops/ops_util.h"
#include "tests/support/process.h"

namespace pm::test {

class BootedContainer {
 public:
  struct Options {
    std::vector<std::string> binds;  // "host:container" (or one path, the same on both sides), read-only
    std::vector<std::string> wants;  // units the boot starts
    bool own_network = true;         // false: the host's network (its loopback's PostgreSQL reachable)
  };
  // `scratch_dir`: where nspawn's console output goes.
  BootedContainer(const std::string& scratch_dir, const Options& options);
  ~BootedContainer();
  BootedContainer(const BootedContainer&) = delete;
  BootedContainer& operator=(const BootedContainer&) = delete;

  bool started() const { return leader_ > 0; }
  bool booted() const { return leader_ > 0 && booted_; }
  const std::string& why() const { return why_; }
  CommandResult run(const std::string& command) const;

 private:
  pid_t find_leader() const;  // nspawn's child that is PID 1 in its own namespace, or -1
  int lock_fd_ = -1;  // the machine-wide lock, held for the container's life
  Process nspawn_;
  std::string console_file_;
  pid_t leader_ = -1;
  bool booted_ = false;
  std::string why_;
};

}  // namespace pm::test

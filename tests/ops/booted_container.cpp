#include "tests/ops/booted_container.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace pm::test {

using namespace std::chrono_literals;

namespace {

const char* const kNspawn = "/usr/bin/systemd-nspawn";

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

std::string read_whole(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The value of `key` in /proc/<pid>/status ("" when the process or the key is gone).
std::string status_field(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key + ":", 0) == 0) return line.substr(key.size() + 1);
  return "";
}

}  // namespace

BootedContainer::BootedContainer(const std::string& scratch_dir, const Options& options)
    : console_file_(scratch_dir + "/nspawn-console.log") {
  if (::geteuid() != 0) {
    why_ = "needs root";
    return;
  }
  if (::access(kNspawn, X_OK) != 0) {
    why_ = std::string(kNspawn) + " missing (package systemd-container, scripts/setup.sh)";
    return;
  }
  lock_fd_ = ::open((std::filesystem::temp_directory_path() / "pm-ingestd-booted-container.lock").c_str(),
                    O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  if (lock_fd_ < 0 || ::flock(lock_fd_, LOCK_EX) != 0) {
    why_ = "cannot take the booted containers' lock";
    return;
  }
  // nspawn dies with this thread (a test binary killed by ctest's timeout leaves no container).
  std::vector<std::string> args = {"--pdeathsig", "KILL", "--", kNspawn, "--directory=/", "--volatile=yes", "--overlay=/etc::/etc",
                                   "--machine=pmtest" + std::to_string(::getpid()), "--register=no",
                                   "--keep-unit", "--link-journal=no", "--console=read-only",
                                   // ConditionCredential=|sysusers.extra: sysusers runs at every boot.
                                   "--set-credential=sysusers.extra:# the test container's boot"};
  if (options.own_network) args.push_back("--private-network");
  for (const auto& bind : options.binds) args.push_back("--bind-ro=" + bind);
  for (const auto& arg : {"--boot", "systemd.unit=multi-user.target", "systemd.mask=postgresql.service",
                          "systemd.mask=postgresql@15-main.service", "systemd.mask=prometheus.service"})
    args.push_back(arg);
  for (const auto& unit : options.wants) args.push_back("systemd.wants=" + unit);
  nspawn_.start("/usr/bin/setpriv", args, {}, console_file_);

  wait_until([&] { return (leader_ = find_leader()) > 0 || !nspawn_.running(); }, 20s);
  if (leader_ <= 0) {
    why_ = "systemd-nspawn started no container: " + read_whole(console_file_);
    return;
  }
  std::string state;
  booted_ = wait_until(
      [&] {
        state = first_line(run("systemctl is-system-running 2>/dev/null").output);
        return state == "running" || state == "degraded" || !nspawn_.running();
      },
      60s) &&
            (state == "running" || state == "degraded");
  if (!booted_)
    why_ = "the container did not boot (state '" + state + "'): " + read_whole(console_file_) + "\njobs:\n" +
           run("systemctl list-jobs --no-pager").output;
}

BootedContainer::~BootedContainer() {
  if (nspawn_.running()) {
    if (leader_ > 0) run("systemctl poweroff --no-block");
    if (!nspawn_.wait(30s)) nspawn_.kill9();
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock
}

pid_t BootedContainer::find_leader() const {
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    if (status_field(pid, "PPid") != "\t" + std::to_string(nspawn_.pid())) continue;
    const std::string ns_pids = status_field(pid, "NSpid");  // "\t<host pid>\t1" for a namespace's PID 1
    if (ns_pids.size() >= 2 && ns_pids.compare(ns_pids.size() - 2, 2, "\t1") == 0) return pid;
  }
  return -1;
}

CommandResult BootedContainer::run(const std::string& command) const {
  return run_command("nsenter -t " + std::to_string(leader_) + " -a /bin/sh -c " + shell_quote(command));
}

}  // namespace pm::test

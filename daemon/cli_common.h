#pragma once
// Helpers shared by the executables: where the database URL comes from and how to keep its
// password out of `ps`, logs and error messages.
#include <optional>
#include <stdexcept>
#include <string>

namespace pm {

// A mistake in how a command was called (a missing or bad option): pm-ingestctl exits 2 for it,
// 1 for a failure while the command ran.
struct UsageError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// `value` when least <= value <= most; otherwise throws a UsageError "--OPTION must be between
// LEAST and MOST[ UNIT] (VALUE given)". Options are read as signed numbers so that "-1" is
// refused instead of wrapping to a huge count.
long long require_between(const std::string& option, long long value, long long least, long long most,
                          const std::string& unit = "");

// Overwrites, in place, the password of any connection URL found in argv (so `ps` shows "***"
// padded with '*'). Call once, after the options were parsed (they hold copies) and before
// other threads run.
void scrub_argv_passwords(int argc, char** argv);

// The same, in place, for the database URL variables of the process's environment block
// (DATABASE_URL, PM_INGESTD_DATABASE_URL): /proc/PID/environ shows the block the process started
// with, and systemd-coredump copies it into the journal (COREDUMP_ENVIRON=) on a crash. getenv()
// of those variables returns the masked text afterwards: call once, after the options hold the
// URL, before other threads run, in a program that reads them no more (pm-ingestd).
void scrub_environment_passwords();

// Whether `instance_id` names one of pm-ingestctl replay's own checkpoints: it starts with
// "replay" (replay's default names do; a daemon's may not, so status tells them apart).
bool names_a_replay_checkpoint(const std::string& instance_id);

// The database URL: the explicit value if given, else the first line of `url_file`, else
// DATABASE_URL, else nullopt. Its password is made known to redact_url() (remember_passwords_of).
// Throws a UsageError naming the file and why when the file cannot be read or is empty.
std::optional<std::string> resolve_database_url(const std::string& explicit_url,
                                                const std::string& url_file);

}  // namespace pm

// parse_daemon_options: every value is checked, and a bad one is refused naming its option,
// instead of wrapping ("-1" into a count), being cut at the first non-digit, or switching
// something off.
#include <cstdlib>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "daemon/cli_common.h"
#include "daemon/daemon_options.h"
#include "metrics/http_endpoint.h"
#include "tests/support/daemon_harness.h"

namespace pm::test {
namespace {

// DATABASE_URL as it was, put back when the scope ends: the suites after this one in the same
// process (e2e_tests run by hand) connect with it.
class DatabaseUrlRestorer {
 public:
  DatabaseUrlRestorer() {
    if (const char* url = std::getenv("DATABASE_URL")) saved_ = url;
  }
  ~DatabaseUrlRestorer() {
    if (saved_) ::setenv("DATABASE_URL", saved_->c_str(), 1);
    else ::unsetenv("DATABASE_URL");
  }
 private:
  std::optional<std::string> saved_;
};

// The options `args` give (argv[0] added), with DATABASE_URL set unless `url` is empty.
DaemonOptions parse(std::vector<std::string> args, const std::string& url = "postgresql://u@localhost/db") {
  const DatabaseUrlRestorer restore;
  if (url.empty()) ::unsetenv("DATABASE_URL");
  else ::setenv("DATABASE_URL", url.c_str(), 1);
  args.insert(args.begin(), "pm-ingestd");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  const auto options = parse_daemon_options(static_cast<int>(argv.size()), argv.data(), "test");
  if (!options) throw std::logic_error("--help or --version");
  return *options;
}

// The message parse() refuses `args` with ("" when it takes them).
std::string refusal(const std::vector<std::string>& args) {
  try {
    parse(args);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(DaemonOptions, NegativeZeroOversizedAndTrailingGarbageValuesAreRefusedNamingTheOption) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"--batch-max-events=-1"}, "--batch-max-events must be between 1 and"},
      {{"--queue-max-events=-1"}, "--queue-max-events must be between 1 and"},
      {{"--queue-max-bytes", "1K"}, "--queue-max-bytes must be between 64K and 16G (1024 given)"},
      {{"--batch-max-bytes", "17G"}, "--batch-max-bytes must be between 64K and 16G"},
      {{"--batch-max-bytes=-1"}, "--batch-max-bytes: '-1' is not a byte count"},
      {{"--max-connections", "0"}, "--max-connections must be between 1 and"},
      {{"--max-connections-per-uid=-1"}, "--max-connections-per-uid must be between 0 and"},
      {{"--min-standbys=-1"}, "--min-standbys must be between 0 and"},
      {{"--instance-id", "replay-feed"}, "--instance-id 'replay-feed' starts with 'replay'"},
      {{"--writer-connections", "17"}, "--writer-connections must be between 1 and 16"},
      {{"--max-line-bytes=-1"}, "--max-line-bytes: '-1' is not a byte count"},
      {{"--wal-max-bytes", "0"}, "--wal-max-bytes must be more than 0"},
      {{"--wal-max-bytes", "17179869184G"}, "--wal-max-bytes: '17179869184G' is too large"},
      {{"--wal-max-bytes", "+4G"}, "--wal-max-bytes: '+4G' is not a byte count"},
      {{"--archive-dir", "/tmp/a", "--archive-max-age", "18446744073709552"}, "--archive-max-age: '18446744073709552' is longer than 100 years"},
      {{"--archive-dir", "/tmp/a", "--archive-max-age", "213503982334602d"}, "is longer than 100 years"},
      {{"--archive-dir", "/tmp/a", "--archive-max-age", "-5d"}, "--archive-max-age: '-5d' is not a duration"},
      {{"--stale-after=-1"}, "--stale-after must be between 1 and"},
      // Durations past a bound overflowed the clock arithmetic: SIGTERM exited at once, every
      // event counted as stale.
      {{"--shutdown-timeout", "10000000000"}, "--shutdown-timeout must be between 1 and 86400 seconds"},
      {{"--stale-after", "9223372036854775"}, "--stale-after must be between 1 and 31536000 seconds"},
      {{"--reply-timeout", "0"}, "--reply-timeout must be between 1 and 86400 seconds"},
      {{"--line-timeout", "100000000000"}, "--line-timeout must be between 1 and 86400 seconds"},
      {{"--batch-max-delay-ms", "-1"}, "--batch-max-delay-ms must be between 0 and 60000 ms"},
      {{"--wal-segment-bytes", "0"}, "--wal-segment-bytes must be between 4K and 4G"},
      {{"--wal-segment-bytes", "1024G"}, "--wal-segment-bytes must be between 4K and 4G"},
      {{"--socket-mode", "0668"}, "--socket-mode: '0668' is not an octal mode"},
      {{"--socket-mode=-1"}, "--socket-mode: '-1' is not an octal mode"},
      {{"--socket-mode", "4755"}, "--socket-mode: '4755' sets more than permission bits"},
      {{"--allow-uid", "4294967296"}, "--allow-uid: 4294967296 is not a valid id"},
      {{"--allow-uid", "99999999999999999999999"}, "--allow-uid: 99999999999999999999999 is not a valid id"},
      {{"--socket-group", "4294967295"}, "--socket-group: 4294967295 is not a valid id"},
      {{"--log-level", "INFO"}, "--log-level: 'INFO' is none of trace, debug, info, warn, error, critical"},
      {{"--log-level", "fatal"}, "--log-level: 'fatal' is none of"},
      // Refused only after the log's recovery, by civetweb, in a message without the option's
      // name; a list or a suffixed port opened listeners the option did not describe.
      {{"--metrics-listen", "127.0.0.1:abc"}, "--metrics-listen must be host:port"},
      {{"--metrics-listen", "127.0.0.1:"}, "--metrics-listen must be host:port"},
      {{"--metrics-listen", "127.0.0.1:0"}, "--metrics-listen must be host:port"},
      {{"--metrics-listen", "127.0.0.1:65536"}, "--metrics-listen must be host:port"},
      {{"--metrics-listen", "127.0.0.1:9464,0.0.0.0:9465"}, "got '127.0.0.1:9464,0.0.0.0:9465'"},
      {{"--metrics-listen", "127.0.0.1:9464s"}, "--metrics-listen must be host:port"},
      {{"--metrics-listen", "metrics.example:9464"}, "--metrics-listen must be host:port"},
      {{"--metrics-listen", "[::1:9464"}, "--metrics-listen must be host:port"},
      {{"--metrics-listen", "9464"}, "--metrics-listen must be host:port"},
  };
  for (const auto& [args, expected] : cases) EXPECT_NE(refusal(args).find(expected), std::string::npos) << args.front() << ": " << refusal(args);
}

// A line over 16 MiB was acked, written as one log record, and then could not be read back (the
// reader refuses records over 16 MiB): the writer stopped on it at its first read-back, and after
// every restart. A freshness bound at or above 300 s, the histogram's highest bucket, made an
// alert that could never fire.
TEST(DaemonOptions, ALineLimitTheLogCannotReadBackAndAnAlertBoundTheHistogramCannotReachAreRefused) {
  EXPECT_NE(refusal({"--max-line-bytes", "32M"}).find("--max-line-bytes must be between 256 and 8388608"), std::string::npos)
      << refusal({"--max-line-bytes", "32M"});
  EXPECT_NE(refusal({"--max-line-bytes", "8388609"}), "");
  EXPECT_EQ(parse({"--max-line-bytes", "8M"}).max_line_bytes, 8u << 20);
  EXPECT_NE(refusal({"--freshness-alert-seconds", "300"}).find("below 300"), std::string::npos)
      << refusal({"--freshness-alert-seconds", "300"});
  EXPECT_NE(refusal({"--freshness-alert-seconds", "600"}), "");
  EXPECT_EQ(parse({"--freshness-alert-seconds", "299"}).freshness_alert_seconds, 299);
}

TEST(DaemonOptions, GoodValuesAreTakenAsTheHelpSays) {
  const DaemonOptions d = parse({"--socket-mode", "0640", "--wal-max-bytes", "8G", "--max-line-bytes", "2M", "--allow-uid", "4294967294",
                                 "--log-level", "warn", "--archive-dir", "/tmp/a", "--archive-max-age", "30d", "--max-connections-per-uid", "0"});
  EXPECT_EQ(d.socket_mode, 0640u);
  EXPECT_EQ(d.wal_max_bytes, 8ull << 30);
  EXPECT_EQ(d.max_line_bytes, 2ull << 20);
  EXPECT_EQ(d.allow_uids, std::vector<uid_t>{4294967294u});
  EXPECT_EQ(d.log_level, "warn");
  EXPECT_EQ(d.archive_max_age, std::chrono::hours(24 * 30));
  EXPECT_EQ(d.max_connections_per_uid, 0u);
  for (const std::string listen : {"127.0.0.1:9464", "0.0.0.0:1", "localhost:65535"})
    EXPECT_EQ(parse({"--metrics-listen", listen}).metrics_listen, listen);
  // IPv6 where the HTTP server can serve it; refused at parsing where it cannot (Debian's civetweb).
  if (http_endpoint_serves_ipv6())
    EXPECT_EQ(parse({"--metrics-listen", "[::1]:9464"}).metrics_listen, "[::1]:9464");
  else
    EXPECT_THROW(parse({"--metrics-listen", "[::1]:9464"}), std::invalid_argument);
}

// DATABASE_URL used to be read as --database-url, so it beat a --database-url-file given on the
// command line ("command line beats environment" said otherwise).
TEST(DaemonOptions, TheDatabaseUrlIsTheOptionElseTheFileElseDatabaseUrl) {
  const std::string file = make_temp_dir("pm_opts") + "/url";
  std::ofstream(file) << "postgresql://from-file@localhost/db\n";
  const std::string env = "postgresql://from-env@localhost/db";
  EXPECT_EQ(parse({"--database-url-file", file}, env).database_url, "postgresql://from-file@localhost/db");
  EXPECT_EQ(parse({"--database-url", "postgresql://from-option@localhost/db", "--database-url-file", file}, env).database_url,
            "postgresql://from-option@localhost/db");
  EXPECT_EQ(parse({}, env).database_url, env);
  EXPECT_THROW(parse({}, ""), std::invalid_argument);
}

TEST(DaemonOptions, AUrlFileOnTheCommandLineBeatsAUrlInTheConfigFile) {
  const std::string dir = make_temp_dir("pm_opts");
  std::ofstream(dir + "/url") << "postgresql://from-file@localhost/db\n";
  std::ofstream(dir + "/pm-ingestd.conf") << "database-url = postgresql://from-config@localhost/db\n";
  const std::string config = dir + "/pm-ingestd.conf";
  EXPECT_EQ(parse({"--config", config, "--database-url-file", dir + "/url"}).database_url,
            "postgresql://from-file@localhost/db");
  EXPECT_EQ(parse({"--config", config}).database_url, "postgresql://from-config@localhost/db");
  ::setenv("PM_INGESTD_DATABASE_URL_FILE", (dir + "/url").c_str(), 1);
  const std::string from_environment = parse({"--config", config}).database_url;
  ::setenv("PM_INGESTD_DATABASE_URL_FILE", "", 1);  // an empty value sets nothing: the config decides
  const std::string past_an_empty_variable = parse({"--config", config}).database_url;
  ::unsetenv("PM_INGESTD_DATABASE_URL_FILE");
  EXPECT_EQ(from_environment, "postgresql://from-file@localhost/db");
  EXPECT_EQ(past_an_empty_variable, "postgresql://from-config@localhost/db");
}

// An empty value switched the archive off in silence (`--archive-dir ""`, or ExecStart's
// `--archive-dir ${ARCHIVE_DIR}` with the variable unset), an empty PM_INGESTD_ARCHIVE_DIR hid the
// config file's archive-dir, and an empty --wal-dir or a socket path too long for a Unix socket
// failed only after the log's recovery, naming no option.
TEST(DaemonOptions, EmptyPathsEmptyVariablesAndATooLongSocketPathAreRefused) {
  EXPECT_EQ(refusal({"--archive-dir", ""}), "--archive-dir is empty: give a path (or leave the option out: no archive)");
  EXPECT_EQ(refusal({"--wal-dir", ""}), "--wal-dir is empty: give a path");
  EXPECT_EQ(refusal({"--socket", ""}), "--socket is empty: give a path");
  EXPECT_EQ(refusal({"--socket", "/run/" + std::string(103, 's')}), "--socket: the path is 108 bytes; a Unix socket's path has at most 107");
  EXPECT_EQ(parse({"--socket", "/run/" + std::string(102, 's')}).socket_path.size(), 107u);

  // An empty variable is refused, naming it: stored, it hid the config file's archive-dir (the
  // archive off); taken as unset, PM_INGESTD_ALLOW_UID= would drop the access list in silence.
  const std::string dir = make_temp_dir("pm_opts");
  std::ofstream(dir + "/pm-ingestd.conf") << "archive-dir = " << dir << "/archive\n";
  const std::string config = dir + "/pm-ingestd.conf";
  for (const char* variable : {"PM_INGESTD_ARCHIVE_DIR", "PM_INGESTD_ALLOW_UID"}) {
    ::setenv(variable, "", 1);
    const std::string refused = refusal({"--config", config});
    ::unsetenv(variable);
    EXPECT_NE(refused.find(std::string("environment variable ") + variable + " is empty"), std::string::npos) << refused;
  }
  EXPECT_EQ(parse({"--config", config}).archive_dir, dir + "/archive");
  // Moot when the command line sets the option (the unit passes --socket-group; an empty
  // PM_INGESTD_SOCKET_GROUP= in the env file must not stop it).
  ::setenv("PM_INGESTD_ARCHIVE_DIR", "", 1);
  const std::string from_the_command_line = parse({"--archive-dir", dir + "/cli"}).archive_dir;
  ::unsetenv("PM_INGESTD_ARCHIVE_DIR");
  EXPECT_EQ(from_the_command_line, dir + "/cli");
}

// The unit's ExecStart= sets --wal-dir, --socket and --socket-group: PM_INGESTD_WAL_DIR=/data/wal in
// the env file was ignored in silence (the log stayed where it was). Each such variable is named
// in a notice for the log, without its value (a value may be a password); an empty one is moot.
TEST(DaemonOptions, AVariableTheCommandLineOverridesIsNamedInANotice) {
  ::setenv("PM_INGESTD_WAL_DIR", "/data/wal", 1);
  ::setenv("PM_INGESTD_DATABASE_URL", "postgresql://u:S3cretMoot@h/db", 1);
  ::setenv("PM_INGESTD_SOCKET_GROUP", "", 1);
  const DaemonOptions options = parse({"--wal-dir", "/var/lib/pm-ingestd/wal", "--database-url", "postgresql://u@h/db",
                                       "--socket-group", "0"});
  ::unsetenv("PM_INGESTD_WAL_DIR");
  ::unsetenv("PM_INGESTD_DATABASE_URL");
  ::unsetenv("PM_INGESTD_SOCKET_GROUP");
  EXPECT_EQ(options.wal_dir, "/var/lib/pm-ingestd/wal");
  ASSERT_EQ(options.moot_variables.size(), 2u);
  std::string notices;
  for (const auto& notice : options.moot_variables) notices += notice + "\n";
  EXPECT_NE(notices.find("PM_INGESTD_WAL_DIR is ignored: the command line sets --wal-dir"), std::string::npos) << notices;
  EXPECT_NE(notices.find("PM_INGESTD_DATABASE_URL is ignored: the command line sets --database-url"), std::string::npos)
      << notices;
  EXPECT_EQ(notices.find("S3cretMoot"), std::string::npos) << notices;
  EXPECT_TRUE(parse({"--wal-dir", "/x"}).moot_variables.empty());

  // The database pair is one setting: a URL file on the command line makes the variable of the URL
  // moot (it was ignored in silence), and the other way round.
  const std::string dir = make_temp_dir("pm_opts");
  std::ofstream(dir + "/url") << "postgresql://from-file@localhost/db\n";
  ::setenv("PM_INGESTD_DATABASE_URL", "postgresql://u:S3cretMoot@h/db", 1);
  const DaemonOptions from_file = parse({std::string("--database-url-file"), dir + "/url"});
  ::unsetenv("PM_INGESTD_DATABASE_URL");
  EXPECT_EQ(from_file.database_url, "postgresql://from-file@localhost/db");
  ASSERT_EQ(from_file.moot_variables.size(), 1u);
  EXPECT_NE(from_file.moot_variables[0].find("PM_INGESTD_DATABASE_URL is ignored: the command line sets "
                                             "--database-url-file (the two are one setting"),
            std::string::npos) << from_file.moot_variables[0];
  ::setenv("PM_INGESTD_DATABASE_URL_FILE", (dir + "/url").c_str(), 1);
  const DaemonOptions from_url = parse({"--database-url", "postgresql://u@h/db"});
  ::unsetenv("PM_INGESTD_DATABASE_URL_FILE");
  EXPECT_EQ(from_url.database_url, "postgresql://u@h/db");
  ASSERT_EQ(from_url.moot_variables.size(), 1u);
  EXPECT_NE(from_url.moot_variables[0].find("PM_INGESTD_DATABASE_URL_FILE is ignored: the command line sets "
                                            "--database-url "),
            std::string::npos) << from_url.moot_variables[0];
}

// A relative database-url-file in the config file was read from the daemon's working directory (/
// under systemd), and pm-ingestctl --config read it from the operator's: refused in both.
TEST(DaemonOptions, ARelativeUrlFileInTheConfigFileIsRefused) {
  const std::string dir = make_temp_dir("pm_opts");
  std::ofstream(dir + "/url") << "postgresql://from-file@localhost/db\n";
  std::ofstream(dir + "/pm-ingestd.conf") << "database-url-file = url\n";
  const std::string config = dir + "/pm-ingestd.conf";
  try {
    parse({"--config", config});
    ADD_FAILURE() << "a relative database-url-file in the config file was taken";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "--config " + config + ": database-url-file must be an absolute path ('url' given)");
  }
  EXPECT_THROW(config_file_database(config), std::invalid_argument);
  // Where another source decides the database, the config file's line is not read: no error.
  EXPECT_EQ(parse({"--config", config, "--database-url-file", dir + "/url"}).database_url, "postgresql://from-file@localhost/db");
  std::ofstream(config) << "database-url-file = " << dir << "/url\nbatch-max-events = 10\n";
  EXPECT_EQ(config_file_database(config), std::make_pair(std::string(), dir + "/url"));
  std::ofstream(config) << "database-url-fiel = " << dir << "/url\n";
  EXPECT_THROW(config_file_database(config), std::invalid_argument);
}

// The INI format ends a value at '#': a password holding one was cut there, the daemon connected
// with "postgresql://u:pa" and the connection error could show "pa". Refused, without quoting it.
TEST(DaemonOptions, ADatabaseUrlWithAHashInTheConfigFileIsRefusedWithoutQuotingIt) {
  const std::string dir = make_temp_dir("pm_opts");
  const std::string config = dir + "/pm-ingestd.conf";
  std::ofstream(config) << "wal-max-bytes = 8G  # a comment is fine here\n  database-url = postgresql://u:pa#ss@localhost/db\n";
  for (int run = 0; run < 2; ++run) {
    try {
      run == 0 ? static_cast<void>(parse({"--config", config})) : static_cast<void>(config_file_database(config));
      ADD_FAILURE() << "a database-url cut at '#' was taken";
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("--config " + config + ": the database-url line holds '#'"), std::string::npos) << what;
      EXPECT_NE(what.find("%23"), std::string::npos) << what;
      EXPECT_EQ(what.find("u:pa"), std::string::npos) << "no part of the password: " << what;
      EXPECT_EQ(what.find("ss@"), std::string::npos) << what;
    }
  }
  std::ofstream(config) << "database-url = postgresql://u:pa%23ss@localhost/db\ndatabase-url-file-x = 1\n";
  EXPECT_THROW(config_file_database(config), std::invalid_argument) << "still an unknown name";
  std::ofstream(config) << "database-url = postgresql://u:pa%23ss@localhost/db  \n";
  EXPECT_EQ(parse({"--config", config}).database_url, "postgresql://u:pa%23ss@localhost/db");
}

// The access list comes from one place, as every option does (command line, else environment,
// else config file): merged, a user the config file allowed stayed allowed after the command line
// or the environment named another.
TEST(DaemonOptions, TheAccessListOfTheCommandLineReplacesTheOnesOfTheEnvironmentAndTheConfigFile) {
  const std::string dir = make_temp_dir("pm_opts");
  const std::string config = dir + "/pm-ingestd.conf";
  std::ofstream(config) << "allow-uid = 1001\nallow-uid = 1002\nallow-gid = 2001\n";
  EXPECT_EQ(parse({"--config", config}).allow_uids, (std::vector<uid_t>{1001, 1002})) << "repeated in one source: both";
  ::setenv("PM_INGESTD_ALLOW_UID", "1003", 1);
  const DaemonOptions from_environment = parse({"--config", config});
  const DaemonOptions from_command_line = parse({"--config", config, "--allow-uid", "1004", "--allow-uid", "1005"});
  ::unsetenv("PM_INGESTD_ALLOW_UID");
  EXPECT_EQ(from_environment.allow_uids, std::vector<uid_t>{1003});
  EXPECT_EQ(from_environment.allow_gids, std::vector<gid_t>{2001}) << "the config file still gives what nothing else does";
  EXPECT_EQ(from_command_line.allow_uids, (std::vector<uid_t>{1004, 1005}));
}

// `--database-url=password=S host=H` (option and value in one argument): the key = value pattern
// wants a blank or a quote before `password`, so ps showed the password of pm-ingestctl and
// pm-loadgen, which scrub argv before they resolve the URL.
TEST(ArgvScrub, APasswordInAConninfoJoinedToItsOptionIsMasked) {
  std::vector<std::string> args = {"pm-ingestctl", "status", "--database-url=password=J0inedPW host=127.0.0.1",
                                   "--database-url=postgresql://u:Ur1PW@h/db", "--database-url", "password=Sp1itPW host=h"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  scrub_argv_passwords(static_cast<int>(argv.size()), argv.data());
  std::string shown;
  for (const char* a : argv) shown += std::string(a) + " ";
  for (const char* secret : {"J0inedPW", "Ur1PW", "Sp1itPW"}) EXPECT_EQ(shown.find(secret), std::string::npos) << shown;
  EXPECT_NE(shown.find("host=127.0.0.1"), std::string::npos) << "only the password is masked: " << shown;
}

}  // namespace
}  // namespace pm::test

// `cmake --install` of the daemon component into a DESTDIR: binaries, units, service account,
// dashboard, alert rules and the example environment where a Debian admin looks for them, and
// installed units that point at the installed binary.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <regex>

#include "tests/ops/ops_util.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/process.h"

namespace pm::test {
namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(OpsInstall, DaemonComponentLandsWhereADebianAdminExpectsIt) {
  const std::string root = make_temp_dir("pm_ops_install");
  const std::string prefix = PM_INSTALL_PREFIX;
  const CommandResult install = run_command("DESTDIR=" + shell_quote(root) + " cmake --install " + shell_quote(PM_BUILD_DIR) +
                                            " --component daemon");
  ASSERT_EQ(install.exit_code, 0) << install.output;
  const std::string base = root + prefix;

  EXPECT_TRUE(executable(base + "/sbin/pm-ingestd")) << install.output;
  EXPECT_TRUE(executable(base + "/bin/pm-ingestctl")) << install.output;
  for (const char* file : {"/lib/systemd/system/pm-ingestd.service", "/lib/systemd/system/pm-ingestd.socket",
                           "/lib/sysusers.d/pm-ingestd.conf", "/lib/tmpfiles.d/pm-ingestd.conf",
                           "/share/pm-ingestd/grafana/dashboards/pm-ingestd.json",
                           "/share/pm-ingestd/grafana/provisioning/dashboards/pm-ingestd.yaml",
                           "/share/pm-ingestd/grafana/provisioning/datasources/pm-ingestd-prometheus.yaml",
                           "/share/pm-ingestd/prometheus/pm-ingestd-alerts.yml", "/share/pm-ingestd/prometheus/scrape-pm-ingestd.yml",
                           "/share/doc/pm-ingestd/examples/pm-ingestd.env", "/share/doc/pm-ingestd/README.md"})
    EXPECT_TRUE(std::filesystem::is_regular_file(base + file)) << file << "\n" << install.output;
  // The library's development files are another component (repos-dev), not the daemon's.
  EXPECT_FALSE(std::filesystem::exists(base + "/include/pm-ingestd"));

  // Files that name each other name the installed paths.
  const std::string service = read_file(base + "/lib/systemd/system/pm-ingestd.service");
  EXPECT_TRUE(contains(service, "\nExecStart=" + prefix + "/sbin/pm-ingestd ")) << service;
  EXPECT_TRUE(contains(service, "file:" + prefix + "/share/doc/pm-ingestd/README.md")) << service;
  const std::string provider = read_file(base + "/share/pm-ingestd/grafana/provisioning/dashboards/pm-ingestd.yaml");
  EXPECT_TRUE(contains(provider, "path: " + prefix + "/share/pm-ingestd/grafana/dashboards\n")) << provider;
  EXPECT_EQ(read_file(base + "/share/pm-ingestd/grafana/dashboards/pm-ingestd.json"),
            read_file(std::string(PM_SOURCE_DIR) + "/metrics/grafana/pm-ingestd.json"));

  // The installed binary runs, and the installed units verify against the installed tree.
  const CommandResult version = run_command(base + "/sbin/pm-ingestd --version");
  EXPECT_EQ(version.exit_code, 0) << version.output;
  EXPECT_TRUE(contains(version.output, "pm-ingestd ")) << version.output;
  if (executable("/usr/bin/systemd-analyze")) {
    // verify wants ExecStart to exist: point it into the DESTDIR, as if the tree were at /.
    const std::string units = root + "/verify";
    std::filesystem::create_directories(units);
    std::string relocated = service;
    const std::string exec = prefix + "/sbin/pm-ingestd";
    relocated.replace(relocated.find(exec), exec.size(), base + "/sbin/pm-ingestd");
    write_file(units + "/pm-ingestd.service", relocated);
    std::filesystem::copy_file(base + "/lib/systemd/system/pm-ingestd.socket", units + "/pm-ingestd.socket");
    const CommandResult verify =
        run_command("/usr/bin/systemd-analyze verify " + units + "/pm-ingestd.service " + units + "/pm-ingestd.socket");
    EXPECT_EQ(verify.exit_code, 0) << verify.output;
    EXPECT_EQ(verify.output, "");
  }
  // The service account: systemd-sysusers creates user and group pm-ingestd from the installed file.
  if (executable("/usr/bin/systemd-sysusers")) {
    const std::string etc = root + "/sysroot/etc";
    std::filesystem::create_directories(etc);
    for (const char* f : {"/passwd", "/group", "/shadow", "/gshadow"}) write_file(etc + f, "");
    const CommandResult users = run_command("/usr/bin/systemd-sysusers --root=" + shell_quote(root + "/sysroot") + " " +
                                            base + "/lib/sysusers.d/pm-ingestd.conf");
    EXPECT_EQ(users.exit_code, 0) << users.output;
    EXPECT_TRUE(contains(read_file(etc + "/passwd"), "pm-ingestd:x:")) << read_file(etc + "/passwd");
    EXPECT_TRUE(contains(read_file(etc + "/passwd"), ":/var/lib/pm-ingestd:/usr/sbin/nologin\n"));
    EXPECT_TRUE(contains(read_file(etc + "/group"), "pm-ingestd:x:")) << read_file(etc + "/group");
    // Producers join pm-producers, the socket's group (pm-ingestd's members could read what the
    // daemon's group may); the daemon is a member, so it may give a socket it creates that group.
    const std::regex producers("(^|\n)pm-producers:x:[0-9]+:pm-ingestd\n");
    EXPECT_TRUE(std::regex_search(read_file(etc + "/group"), producers)) << read_file(etc + "/group");
  }
  std::filesystem::remove_all(root);
}

TEST(OpsInstall, TheLibraryComponentStillInstallsItsPackage) {
  const std::string root = make_temp_dir("pm_ops_install_lib");
  const CommandResult install = run_command("DESTDIR=" + shell_quote(root) + " cmake --install " + shell_quote(PM_BUILD_DIR) +
                                            " --component repos-dev");
  ASSERT_EQ(install.exit_code, 0) << install.output;
  const std::string base = root + PM_INSTALL_PREFIX;
  EXPECT_TRUE(std::filesystem::exists(base + "/include/pm-ingestd/repos/database.h")) << install.output;
  EXPECT_TRUE(std::filesystem::exists(base + "/include/pm-ingestd/repos/util/backoff.h")) << "database.h includes it";
  EXPECT_FALSE(std::filesystem::exists(base + "/include/pm-ingestd/repos/ingest_checkpoint_repository.h"))
      << "the daemon's own tables are not part of the public library (issue 14)";
  EXPECT_FALSE(std::filesystem::exists(base + "/sbin/pm-ingestd")) << "the daemon is not part of repos-dev";
  EXPECT_TRUE(std::filesystem::exists(base + "/include/pm-ingestd/client/producer_client.h")) << install.output;
  std::filesystem::remove_all(root);
}

// Another component of the bot finds the installed package and links the producer client.
TEST(OpsInstall, AnInstalledPackageExposesTheProducerClient) {
  // A sanitizer build installs instrumented libraries, which an ordinary app cannot link; the
  // ordinary suite runs this.
  if (std::string(PM_SANITIZE) != "") GTEST_SKIP() << "sanitizer build (" << PM_SANITIZE << ")";
  const std::string root = make_temp_dir("pm_ops_install_client");
  const CommandResult install = run_command("DESTDIR=" + shell_quote(root) + " cmake --install " + shell_quote(PM_BUILD_DIR) +
                                            " --component repos-dev");
  ASSERT_EQ(install.exit_code, 0) << install.output;
  const std::string app = root + "/app";
  std::filesystem::create_directories(app);
  write_file(app + "/CMakeLists.txt",
             "cmake_minimum_required(VERSION 3.20)\nproject(app CXX)\nset(CMAKE_CXX_STANDARD 20)\n"
             "find_package(pm-ingestd 0.1 REQUIRED)\nadd_executable(app main.cpp)\n"
             "target_link_libraries(app PRIVATE pm::pm_client)\n");
  write_file(app + "/main.cpp",
             "#include \"client/producer_client.h\"\n"
             "int main() { pm::client::ProducerOptions o; o.socket_path = \"/nonexistent\"; o.give_up_after = std::chrono::milliseconds(50);\n"
             "  pm::client::ProducerClient p(o); return p.send(\"{}\").get().acked() ? 1 : 0; }\n");
  const std::string prefix = root + PM_INSTALL_PREFIX;
  const CommandResult build = run_command("cmake -S " + shell_quote(app) + " -B " + shell_quote(app + "/build") +
                                          " -DCMAKE_PREFIX_PATH=" + shell_quote(prefix) + " && cmake --build " +
                                          shell_quote(app + "/build") + " && " + shell_quote(app + "/build/app"));
  EXPECT_EQ(build.exit_code, 0) << build.output;
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace pm::test

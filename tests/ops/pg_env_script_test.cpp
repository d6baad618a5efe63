// scripts/lib_pg_env.sh, which the benchmark scripts source: pg_url_with_db points a database URL
// at the benchmark's own database (which the benchmark empties) and must never leave it pointing
// at the database it came from; pg_describe_url names a database without its password.
#include <gtest/gtest.h>

#include <string>

#include "tests/ops/ops_util.h"

namespace pm::test {
namespace {

const std::string kLibrary = std::string(PM_SOURCE_DIR) + "/scripts/lib_pg_env.sh";

// Runs `call` (a lib_pg_env function call reading the URL from $U) in bash; the URL reaches bash
// in its environment, as the benchmark's does.
CommandResult in_library(const std::string& url, const std::string& call) {
  ScopedEnv env({{"U", url}});
  return run_command("bash -c " + shell_quote("source " + shell_quote(kLibrary) + " && " + call));
}

std::string with_db(const std::string& url, const std::string& database = "pm_bench") {
  const auto result = in_library(url, "pg_url_with_db \"$U\" " + database);
  EXPECT_EQ(result.exit_code, 0) << url << ": " << result.output;
  return result.output;
}

TEST(PgEnvScript, UrlWithDbReplacesOnlyTheDatabase) {
  EXPECT_EQ(with_db("postgresql://u:secret@localhost:5433/postgres"), "postgresql://u:secret@localhost:5433/pm_bench\n");
  EXPECT_EQ(with_db("postgresql://h"), "postgresql://h/pm_bench\n");
  // A Unix socket directory as a parameter: the empty authority stays (it was dropped, which made
  // "postgresql:/pm_bench?host=...", a URL libpq refuses).
  EXPECT_EQ(with_db("postgresql:///postgres?host=/tmp&port=5433"), "postgresql:///pm_bench?host=/tmp&port=5433\n");
  // '+' and percent-escapes are kept as they were: libpq reads '+' as itself, not as a space.
  EXPECT_EQ(with_db("postgres://u:a+b@h:1/db?password=c%2Bd"), "postgres://u:a+b@h:1/pm_bench?password=c%2Bd\n");
}

// libpq ranks a dbname parameter above the path: kept, it pointed the benchmark, which drops and
// fills polymarket_trades, at the database the URL named.
TEST(PgEnvScript, UrlWithDbDropsADbnameParameter) {
  EXPECT_EQ(with_db("postgresql://h/postgres?dbname=production&sslmode=disable"),
            "postgresql://h/pm_bench?sslmode=disable\n");
  EXPECT_EQ(with_db("postgresql://h/postgres?db%6Eame=production"), "postgresql://h/pm_bench\n");
  const auto described = in_library("postgresql://u:secret@h:5433/postgres?dbname=production",
                                    "pg_describe_url \"$(pg_url_with_db \"$U\" pm_bench)\"");
  EXPECT_EQ(described.exit_code, 0) << described.output;
  EXPECT_EQ(described.output, "database pm_bench on host h port 5433 as user u\n");
}

TEST(PgEnvScript, UrlWithDbRefusesWhatItCannotRewrite) {
  const auto key_value = in_library("host=/tmp dbname=production password=secret", "pg_url_with_db \"$U\" pm_bench");
  EXPECT_EQ(key_value.exit_code, 2);
  EXPECT_NE(key_value.output.find("not a postgresql:// URL"), std::string::npos) << key_value.output;
  EXPECT_EQ(key_value.output.find("secret"), std::string::npos) << key_value.output;
  EXPECT_EQ(key_value.output.find("production"), std::string::npos) << key_value.output;
}

}  // namespace
}  // namespace pm::test

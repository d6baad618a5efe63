// bench/report.py rewrites only the generated part of bench/results.md: the hand-written
// analyses below its KEEP_BELOW line (most of the file) survive every benchmark run, and a
// results.md without that line is kept whole below it.
#include <gtest/gtest.h>

#include <string>

#include "tests/ops/ops_util.h"
#include "tests/support/process.h"

namespace pm::test {
namespace {

const std::string kReport = std::string(PM_SOURCE_DIR) + "/bench/report.py";
const std::string kKeepBelow =
    "<!-- bench/report.py writes the sections above this line; the sections below it are kept as they are -->";

// Runs report.py on no results (every generated section is left out; the context line remains)
// into `dir`, where results.md may already be.
void report_into(const std::string& dir) {
  write_file(dir + "/results.jsonl", "");
  const auto r = run_command("/usr/bin/python3 " + shell_quote(kReport) + " " + shell_quote(dir + "/results.jsonl") +
                             " " + shell_quote(dir) + " --context 'this run'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

TEST(BenchReport, ANewReportReplacesTheGeneratedPartAndKeepsTheSectionsBelowItsLine) {
  ScratchDir dir("bench-report");
  write_file(dir.path() + "/results.md",
             "Machine and settings: an older run.\n\n" + kKeepBelow + "\n\n## An analysis by hand\n\nits figures\n");
  report_into(dir.path());
  const std::string md = read_file(dir.path() + "/results.md");
  EXPECT_EQ(md, "Machine and settings: this run.\n\n" + kKeepBelow + "\n\n## An analysis by hand\n\nits figures\n");
}

TEST(BenchReport, AResultsFileWithoutTheLineIsKeptWholeBelowIt) {
  ScratchDir dir("bench-report");
  write_file(dir.path() + "/results.md", "## Written before the line existed\n");
  report_into(dir.path());
  EXPECT_EQ(read_file(dir.path() + "/results.md"),
            "Machine and settings: this run.\n\n" + kKeepBelow + "\n\n## Written before the line existed\n");
  report_into(dir.path());  // and a second run keeps it once, not twice
  EXPECT_EQ(read_file(dir.path() + "/results.md"),
            "Machine and settings: this run.\n\n" + kKeepBelow + "\n\n## Written before the line existed\n");
}

// A freshness run is reported with the probes' figures from their due time beside those from the
// first write (coordinated omission), and a run recorded before pm-loadgen had them shows '-'.
TEST(BenchReport, FreshnessRowsShowTheFiguresFromTheDueTimeAndOlderRunsADash) {
  ScratchDir dir("bench-report");
  const auto run = [](int rate, const std::string& from_due) {
    return R"({"section":"freshness","label":")" + std::to_string(rate) + R"(","rate":)" + std::to_string(rate) +
           R"(,"load_rate":)" + std::to_string(rate - 50) +
           R"(,"probes":50,"seconds":10,"connections":1,"loadgen":{"visible_ms":{"p50":1.5,"p90":2.0,"p99":2.5,"max":9.0,)"
           R"("count":500,"acked":500,"poll_period_ms":0.4)" + from_due +
           R"(},"ack_latency_ms":{"p50":0.3,"p99":0.9}}})";
  };
  write_file(dir.path() + "/results.jsonl",
             run(100, R"(,"from_due":{"p50":2.25,"p90":3.0,"p99":31.5,"max":40.0})") + "\n" + run(1000, "") + "\n");
  const auto r = run_command("/usr/bin/python3 " + shell_quote(kReport) + " " + shell_quote(dir.path() + "/results.jsonl") +
                             " " + shell_quote(dir.path()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string md = read_file(dir.path() + "/results.md");
  EXPECT_NE(md.find("| 1.50 | 2.00 | 2.50 | 9.00 | 2.25 / 31.50 | 0.40 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 1.50 | 2.00 | 2.50 | 9.00 | - / - | 0.40 |"), std::string::npos) << md;
}

}  // namespace
}  // namespace pm::test

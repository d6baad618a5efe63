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

}  // namespace
}  // namespace pm::test

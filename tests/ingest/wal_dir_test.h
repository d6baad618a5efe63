#pragma once
// WalDirTest: the fixture of the WAL tests on real files. Each test case gets a fresh log
// directory under the temp directory (named after the case, removed afterwards) and log options
// that collect warnings and recovery findings in warnings_ and fail the test on a fatal error.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "ingest/log/wal.h"

namespace pm::wal {

class WalDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("pm_wal_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->test_suite_name() + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Options options(std::uint64_t segment_bytes = 64ull << 20, bool preallocate = false) {
    Options o;
    o.dir = dir_.string();
    o.segment_bytes = segment_bytes;
    o.preallocate = preallocate;
    o.on_warning = [this](const std::string& w) { warnings_.push_back(w); };
    o.on_recovery = [this](const RecoveryFinding& f) { warnings_.push_back(describe(f)); };
    o.on_fatal = [](const std::string& m) { FAIL() << "fatal: " << m; };
    return o;
  }

  // The segment files of the log, oldest first.
  std::vector<std::filesystem::path> segments() const {
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(dir_))
      if (e.path().extension() == ".wal") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    return files;
  }

  std::filesystem::path dir_;
  std::vector<std::string> warnings_;
};

}  // namespace pm::wal

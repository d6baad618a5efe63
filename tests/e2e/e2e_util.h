#pragma once
// Helpers shared by the end-to-end suites: protocol lines and database checks.
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/process.h"

#include <pqxx/pqxx>

namespace pm::test {

inline std::string trade_line(const std::string& cid, const std::string& trade_id, std::int64_t ts_s = 1'700'000'000,
                              const std::string& price = "0.5") {
  return R"({"type":"trade","condition_id":")" + cid + R"(","trade_id":")" + trade_id + R"(","token_id":"tok","price":)" +
         price + R"(,"size":"10","side":"buy","timestamp":)" + std::to_string(ts_s) + "}";
}

// `count` trade lines of condition `cid` whose trade ids are id_prefix0, id_prefix1, ...
inline std::vector<std::string> trade_lines(const std::string& cid, const std::string& id_prefix, int count) {
  std::vector<std::string> lines;
  for (int i = 0; i < count; ++i) lines.push_back(trade_line(cid, id_prefix + std::to_string(i)));
  return lines;
}

inline std::string trigger_line(const std::string& token, const std::string& cid, const std::string& threshold,
                                std::int64_t ts_ms = 1'700'000'000'000) {
  return R"({"type":"trigger","token_id":")" + token + R"(","condition_id":")" + cid + R"(","threshold":)" + threshold +
         R"(,"trigger_timestamp":)" + std::to_string(ts_ms) + "}";
}

// One pm-ingestctl run: its exit code (-1 when it hung) and its output (stdout and stderr).
struct Run {
  int code;
  std::string output;
};

// One run of `program`: its exit code (-1 when it hung for a minute) and its output.
inline Run run_program(const std::string& program, const std::vector<std::string>& args,
                       const std::map<std::string, std::string>& env = {}) {
  static int n = 0;
  const std::string out = std::filesystem::temp_directory_path() / ("pm_run_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
  Process p;
  p.start(program, args, env, out);
  const auto code = p.wait(std::chrono::seconds(60));
  Run r{code ? *code : -1, read_file(out)};
  std::filesystem::remove(out);
  return r;
}

inline Run run_ctl(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {}) {
  return run_program(PM_INGESTCTL_BIN, args, env);
}

inline long long query_count(const std::string& url, const std::string& sql) {
  pqxx::connection c(url);
  pqxx::nontransaction tx(c);
  return tx.exec1(sql)[0].as<long long>();
}

inline std::set<std::string> trade_ids(const std::string& url) {
  pqxx::connection c(url);
  pqxx::nontransaction tx(c);
  std::set<std::string> out;
  for (const auto& row : tx.exec("SELECT trade_id FROM polymarket_trades")) out.insert(row[0].as<std::string>());
  return out;
}

// The complete lines (ended by '\n') of a running process's output: the last one may be half
// written when the file is read ("retrying in " without its number yet).
inline std::vector<std::string> complete_lines(const std::string& output) {
  std::vector<std::string> lines;
  for (std::size_t begin = 0, end; (end = output.find('\n', begin)) != std::string::npos; begin = end + 1)
    lines.push_back(output.substr(begin, end - begin));
  return lines;
}

// Every wait the daemon's writer announced ("retrying in N ms") on a line of its output holding
// `marker`, in order.
inline std::vector<int> announced_waits(const std::string& output, const std::string& marker) {
  std::vector<int> waits;
  const std::string announce = "retrying in ";
  for (const std::string& line : complete_lines(output)) {
    const std::size_t at = line.find(announce);
    if (line.find(marker) != std::string::npos && at != std::string::npos)
      waits.push_back(std::stoi(line.substr(at + announce.size())));
  }
  return waits;
}

// The daemon's own times (seconds) of the lines of its output holding `marker`, in order: each
// line begins with its spdlog time, "%Y-%m-%dT%H:%M:%S.%e" (local time, read here as UTC: only
// differences between them are meant). Unlike a test's observation of the lines, these do not
// depend on when the test looked.
inline std::vector<double> logged_times(const std::string& output, const std::string& marker) {
  std::vector<double> times;
  for (const std::string& line : complete_lines(output)) {
    if (line.find(marker) == std::string::npos) continue;
    std::tm t{};
    int ms = 0;
    if (std::sscanf(line.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3d", &t.tm_year, &t.tm_mon, &t.tm_mday, &t.tm_hour, &t.tm_min,
                    &t.tm_sec, &ms) != 7)
      continue;  // not a line of the daemon's logger
    t.tm_year -= 1900;
    t.tm_mon -= 1;
    times.push_back(static_cast<double>(::timegm(&t)) + ms / 1000.0);
  }
  return times;
}

}  // namespace pm::test

// The Grafana dashboard and the Prometheus alert rules, checked against a real Prometheus that
// scrapes a real pm-ingestd under load: every panel's query returns data.
#include <gtest/gtest.h>

#include <algorithm>

#include <atomic>
#include <cmath>
#include <map>
#include <set>
#include <thread>

#include <simdjson.h>

#include "tests/e2e/e2e_util.h"
#include "tests/ops/ops_util.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/producer.h"
#include "tests/support/test_database.h"

namespace pm::test {
namespace {

using namespace std::chrono_literals;

const std::string kMetricsDir = std::string(PM_SOURCE_DIR) + "/metrics";
const std::string kDashboard = kMetricsDir + "/grafana/pm-ingestd.json";
const std::string kAlerts = kMetricsDir + "/prometheus/pm-ingestd-alerts.yml";
const std::string kPrometheus = "/usr/bin/prometheus";
const std::string kPromtool = "/usr/bin/promtool";

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

struct Target {
  std::string panel;
  std::string expr;
};

struct Threshold {
  std::string color;
  double value;
};

struct Panel {
  std::string title;
  std::string type;
  std::string datasource_uid;
  std::vector<std::string> exprs;
  std::vector<Threshold> thresholds;  // steps with a value
  std::string thresholds_style;
};

std::vector<Panel> load_panels(const std::string& json_text) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.parse(json_text);
  std::vector<Panel> out;
  auto walk = [&](auto&& self, simdjson::dom::array panels) -> void {
    for (simdjson::dom::element p : panels) {
      Panel panel;
      panel.type = std::string(std::string_view(p["type"]));
      panel.title = std::string(std::string_view(p["title"]));
      simdjson::dom::array nested;
      if (p["panels"].get(nested) == simdjson::SUCCESS) self(self, nested);
      if (panel.type == "row") continue;
      std::string_view uid;
      if (p["datasource"]["uid"].get(uid) == simdjson::SUCCESS) panel.datasource_uid = std::string(uid);
      simdjson::dom::array targets;
      if (p["targets"].get(targets) == simdjson::SUCCESS)
        for (simdjson::dom::element t : targets) panel.exprs.emplace_back(std::string_view(t["expr"]));
      simdjson::dom::array steps;
      if (p["fieldConfig"]["defaults"]["thresholds"]["steps"].get(steps) == simdjson::SUCCESS)
        for (simdjson::dom::element s : steps) {
          double v = 0;
          if (s["value"].get(v) == simdjson::SUCCESS) panel.thresholds.push_back({std::string(std::string_view(s["color"])), v});
        }
      std::string_view style;
      if (p["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"].get(style) == simdjson::SUCCESS)
        panel.thresholds_style = std::string(style);
      out.push_back(std::move(panel));
    }
  };
  walk(walk, doc["panels"].get_array());
  return out;
}

const Panel* find_panel(const std::vector<Panel>& panels, const std::string& title_start, const std::string& type = "timeseries") {
  for (const auto& p : panels)
    if (p.title.rfind(title_start, 0) == 0 && p.type == type) return &p;
  return nullptr;
}

// Grafana's variables, as Grafana would expand them for this test's Prometheus.
std::string expand(std::string expr, const std::string& instance) {
  auto replace = [&](const std::string& from, const std::string& to) {
    for (std::size_t at = 0; (at = expr.find(from, at)) != std::string::npos; at += to.size()) expr.replace(at, from.size(), to);
  };
  replace("$__rate_interval", "10s");
  replace("$instance", instance);
  return expr;
}

TEST(OpsGrafana, DashboardHasEveryPanelTheIssueListsWithThresholdsOnLagAndBacklog) {
  const std::vector<Panel> panels = load_panels(read_file(kDashboard));
  for (const char* title : {"Throughput", "Rejected lines by reason", "Dedup hits", "Lag", "Backlog (share",
                            "Batch size", "Batch commit latency", "fsync latency", "Database health", "Producers"})
    EXPECT_NE(find_panel(panels, title), nullptr) << "no time-series panel titled " << title;
  for (const auto& p : panels) {
    EXPECT_EQ(p.datasource_uid, "${datasource}") << p.title << ": panels use the dashboard's data source variable";
    EXPECT_FALSE(p.exprs.empty()) << p.title;
  }
  for (const char* title : {"Batch size", "Batch commit latency", "fsync latency"}) {
    const Panel* p = find_panel(panels, title);
    ASSERT_NE(p, nullptr);
    for (const auto& e : p->exprs) EXPECT_TRUE(contains(e, "histogram_quantile(")) << title << ": " << e;
  }
  // Freshness (issue 15): the quantiles of arrival-to-visible, and the operator's alert bound.
  const Panel* freshness = find_panel(panels, "Freshness");
  ASSERT_NE(freshness, nullptr);
  ASSERT_EQ(freshness->exprs.size(), 5u);
  for (std::size_t i = 0; i < 3; ++i)
    EXPECT_TRUE(contains(freshness->exprs[i], "histogram_quantile(") && contains(freshness->exprs[i], "pm_ingest_event_visible_seconds_bucket"))
        << freshness->exprs[i];
  EXPECT_TRUE(contains(freshness->exprs[3], "pm_ingest_event_visible_alert_threshold_seconds")) << freshness->exprs[3];
  EXPECT_TRUE(contains(freshness->exprs[4], "histogram_quantile(0.99") && contains(freshness->exprs[4], "pm_ingest_event_waiting_seconds_bucket"))
      << freshness->exprs[4];
  // Archive (issue 12): its size, segments, errors and reach; Polymarket payloads (issue 13).
  for (const auto& [title, metric] : std::vector<std::pair<std::string, std::string>>{
           {"Archive on disk", "pm_ingest_archive_bytes"},
           {"Archive segments", "pm_ingest_archive_pending_segments"},
           {"Archive segments", "pm_ingest_archive_damaged_files"},
           {"Archive errors", "pm_ingest_archive_errors_total"},
           {"Archive reach", "pm_ingest_archive_oldest_event_timestamp_seconds"},
           {"Polymarket messages", "pm_ingest_polymarket_messages_total"},
           {"Hello lines", "pm_ingest_hellos_total"},
           // How busy the writer's connections are (issue 15: near 1, PostgreSQL sets the freshness).
           {"Writer connections busy", "pm_ingest_batch_commit_duration_seconds_sum"},
           {"Writer connections busy", "pm_ingest_writer_connections"},
           // The log's errors (appends, the writer's reads back, removals), the ack's wait for
           // durability, and the queue's overflow read back from the log.
           {"Log errors", "pm_ingest_wal_write_errors_total"},
           {"Log errors", "pm_ingest_wal_read_errors_total"},
           {"Log errors", "pm_ingest_wal_remove_errors_total"},
           {"Durable wait", "pm_ingest_durable_wait_seconds_bucket"},
           {"Queue overflow and log read-back", "pm_ingest_queue_overflow_events_total"},
           {"Queue overflow and log read-back", "pm_ingest_log_catchup_events_total"}}) {
    const Panel* p = find_panel(panels, title);
    ASSERT_NE(p, nullptr) << title;
    EXPECT_TRUE(std::any_of(p->exprs.begin(), p->exprs.end(), [&](const std::string& e) { return contains(e, metric); })) << title;
  }

  // Thresholds drawn on the lag and backlog panels, equal to the alert rules' thresholds.
  const std::string alerts = read_file(kAlerts);
  const Panel* lag = find_panel(panels, "Lag");
  const Panel* backlog = find_panel(panels, "Backlog (share");
  ASSERT_TRUE(lag && backlog);
  for (const auto& [panel, rules] : std::vector<std::pair<const Panel*, std::vector<std::string>>>{
           {lag, {"pm_ingest_lag_oldest_unapplied_seconds > ", "pm_ingest_lag_oldest_unapplied_seconds > "}},
           {backlog, {"pm_ingest_wal_budget_used_bytes / pm_ingest_wal_budget_bytes > ",
                      "pm_ingest_wal_budget_used_bytes / pm_ingest_wal_budget_bytes > "}}}) {
    EXPECT_NE(panel->thresholds_style, "off") << panel->title << ": thresholds must be drawn";
    EXPECT_NE(panel->thresholds_style, "") << panel->title;
    ASSERT_EQ(panel->thresholds.size(), 2u) << panel->title << ": a warning and a critical step";
    for (std::size_t i = 0; i < 2; ++i) {
      std::ostringstream value;
      value << panel->thresholds[i].value;
      EXPECT_TRUE(contains(alerts, "expr: " + rules[i] + value.str() + "\n"))
          << panel->title << ": threshold " << value.str() << " has no alert rule";
    }
  }

  // Provisioning: a file provider pointing where the dashboard is installed, a Prometheus source.
  const std::string provider = read_file(kMetricsDir + "/grafana/provisioning/dashboards/pm-ingestd.yaml");
  EXPECT_TRUE(contains(provider, "type: file")) << provider;
  EXPECT_TRUE(contains(provider, "path: /usr/share/pm-ingestd/grafana/dashboards")) << provider;
  const std::string datasource = read_file(kMetricsDir + "/grafana/provisioning/datasources/pm-ingestd-prometheus.yaml");
  EXPECT_TRUE(contains(datasource, "type: prometheus")) << datasource;
}

// The rules file sends readers to README's alert table: every alert has its row there.
TEST(OpsGrafana, EveryAlertRuleHasItsRowInTheReadmesAlertTable) {
  const std::string alerts = read_file(kAlerts);
  const std::string readme = read_file(std::string(PM_SOURCE_DIR) + "/README.md");
  int rules = 0;
  for (std::size_t at = alerts.find("- alert: "); at != std::string::npos; at = alerts.find("- alert: ", at + 1)) {
    const std::size_t begin = at + 9;
    const std::string name = alerts.substr(begin, alerts.find('\n', begin) - begin);
    ++rules;
    EXPECT_TRUE(contains(readme, "\n| `" + name + "` (")) << name << " has no row in README's alert table";
  }
  EXPECT_GE(rules, 21);
}

TEST(OpsGrafana, AlertRulesPassPromtoolCheckAndTheirUnitTests) {
  if (!executable(kPromtool)) GTEST_SKIP() << "promtool missing: apt-get install prometheus (scripts/setup.sh)";
  const CommandResult check = run_command(kPromtool + " check rules " + kAlerts);
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_TRUE(contains(check.output, "SUCCESS: 21 rules found")) << check.output;
  const CommandResult unit = run_command("cd " + kMetricsDir + "/prometheus && " + kPromtool + " test rules pm-ingestd-alerts.test.yml");
  EXPECT_EQ(unit.exit_code, 0) << unit.output;
  const CommandResult scrape = run_command(kPromtool + " check config " + kMetricsDir + "/prometheus/scrape-pm-ingestd.yml");
  EXPECT_EQ(scrape.exit_code, 0) << scrape.output;
}

// GET /api/v1/query; the result array (empty on errors, with the error in `error`).
struct QueryResult {
  bool ok = false;
  std::size_t series = 0;
  std::size_t finite = 0;  // series whose value is a number (not NaN/Inf)
  std::string raw;
};

QueryResult prometheus_query(int port, const std::string& query) {
  QueryResult r;
  r.raw = http_get(port, "/api/v1/query?query=" + url_encode(query));
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(r.raw).get(doc) != simdjson::SUCCESS) return r;
  std::string_view status;
  if (doc["status"].get(status) != simdjson::SUCCESS || status != "success") return r;
  r.ok = true;
  simdjson::dom::array result;
  if (doc["data"]["result"].get(result) != simdjson::SUCCESS) return r;
  for (simdjson::dom::element s : result) {
    ++r.series;
    std::string_view v;
    if (s["value"].at(1).get(v) == simdjson::SUCCESS) {
      const double d = std::strtod(std::string(v).c_str(), nullptr);
      if (std::isfinite(d)) ++r.finite;
    }
  }
  return r;
}

TEST(OpsGrafana, EveryPanelQueryReturnsDataFromARealPrometheusScrapingTheDaemonUnderLoad) {
  if (!executable(kPrometheus)) GTEST_SKIP() << "prometheus missing: apt-get install prometheus (scripts/setup.sh)";
  TestDatabase tdb("ops_grafana");
  DaemonHarness d(tdb.url());
  // Small segments and an archive, so the archive panels have data too.
  // The freshness alert's bound well above what a sanitizer build under load shows: none may fire
  // (or be pending) on a healthy daemon.
  d.args() = {"--archive-dir", d.dir() + "/archive", "--wal-segment-bytes", "64K", "--standby-wait", "off",
              "--freshness-alert-seconds", "30"};
  d.start();

  const ScratchDir scratch("pm_ops_prom");
  const std::string& dir = scratch.path();
  const int prom_port = free_tcp_port();
  const std::string instance = "127.0.0.1:" + std::to_string(d.metrics_port());
  write_file(dir + "/prometheus.yml",
             "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
             "rule_files:\n  - " + kAlerts + "\n"
             "scrape_configs:\n  - job_name: pm-ingestd\n    static_configs:\n      - targets: ['" + instance + "']\n");
  Process prometheus;
  prometheus.start(kPrometheus,
                   {"--config.file=" + dir + "/prometheus.yml", "--storage.tsdb.path=" + dir + "/data",
                    "--web.listen-address=127.0.0.1:" + std::to_string(prom_port), "--log.level=warn"},
                   {}, dir + "/prometheus.log");

  // Load: trades (a tenth duplicated), triggers of both G2 kinds, a bad line now and then, and
  // one connection held open; paced so that the run spans the scrapes.
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> acked{0};
  std::thread load([&] {
    Producer idle(d.socket());
    Producer p(d.socket());
    std::uint64_t sent = 0;
    for (int round = 0; !stop; ++round) {
      std::vector<std::string> lines;
      for (int i = 0; i < 100; ++i) {
        const int n = round * 100 + i;
        lines.push_back(trade_line("cond" + std::to_string(n % 7), "g" + std::to_string(i % 10 == 0 ? n - 1 : n)));
      }
      lines.push_back(trigger_line("tokA" + std::to_string(round), "cond" + std::to_string(round), "0.9"));
      lines.push_back(trigger_line("tokB" + std::to_string(round), "cond" + std::to_string(round), "0.9"));
      lines.push_back("{not json");
      sent += lines.size();
      if (!p.send(lines) || !p.wait_ack(sent, 10s)) return;
      acked = sent;
      wait_until([&] { return stop.load(); }, 50ms);  // pacing, not synchronisation
    }
  });
  struct Stopper {
    std::atomic<bool>& stop;
    std::thread& t;
    ~Stopper() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } stopper{stop, load};

  // Prometheus is up and has scraped for long enough to fill the dashboard's 10 s rate windows.
  ASSERT_TRUE(wait_until([&] { return prometheus_query(prom_port, "up").ok || !prometheus.running(); }, 30s))
      << read_file(dir + "/prometheus.log");
  ASSERT_TRUE(prometheus.running()) << read_file(dir + "/prometheus.log");
  ASSERT_TRUE(wait_until(
      [&] {
        const QueryResult r = prometheus_query(prom_port, "count_over_time(pm_ingest_build_info[1m]) >= 12");
        return r.series == 1;
      },
      40s))
      << prometheus_query(prom_port, "up").raw;
  EXPECT_GT(acked.load(), 0u);

  const std::vector<Panel> panels = load_panels(read_file(kDashboard));
  std::size_t queries = 0;
  for (const auto& panel : panels) {
    for (const auto& expr : panel.exprs) {
      const std::string q = expand(expr, instance);
      const QueryResult r = prometheus_query(prom_port, q);
      ++queries;
      EXPECT_TRUE(r.ok) << panel.title << ": " << q << "\n" << r.raw;
      EXPECT_GT(r.series, 0u) << panel.title << ": no data for " << q << "\n" << r.raw;
      EXPECT_GT(r.finite, 0u) << panel.title << ": only NaN for " << q << "\n" << r.raw;
    }
  }
  EXPECT_GE(queries, 30u);
  // The template variable's own query.
  EXPECT_EQ(prometheus_query(prom_port, "pm_ingest_build_info").series, 1u);

  // The alert rules loaded and evaluate without errors; none fires on a healthy daemon.
  const std::string rules = http_get(prom_port, "/api/v1/rules");
  EXPECT_TRUE(contains(rules, "\"name\":\"pm-ingestd\"")) << rules;
  EXPECT_FALSE(contains(rules, "\"health\":\"err\"")) << rules;
  // Waited for, not read once: one slow scrape on a loaded machine (up == 0, a missed sample)
  // leaves an alert pending until the next evaluations; one that fires stays.
  std::string alerts;
  EXPECT_TRUE(wait_until([&] {
    alerts = http_get(prom_port, "/api/v1/alerts");
    return contains(alerts, "\"alerts\":[]");
  }, 15s)) << alerts;

  stop = true;
  load.join();
  prometheus.signal(SIGTERM);
  EXPECT_TRUE(prometheus.wait(20s));
}

}  // namespace
}  // namespace pm::test

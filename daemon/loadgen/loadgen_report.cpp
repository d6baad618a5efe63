#include "daemon/loadgen/loadgen_report.h"

#include <fmt/format.h>

namespace pm::loadgen {

namespace {

double ms(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }

// {"p50":..,"p90":..,"p99":..,"p999":..,"max":..,"mean":..,"count":..} in milliseconds.
std::string percentiles_json(const LatencyHistogram::Snapshot& h) {
  return fmt::format(R"({{"p50":{:.4f},"p90":{:.4f},"p99":{:.4f},"p999":{:.4f},"max":{:.4f},"mean":{:.4f},"count":{}}})",
                     ms(h.percentile(0.5)), ms(h.percentile(0.9)), ms(h.percentile(0.99)), ms(h.percentile(0.999)),
                     ms(h.max_ns), h.mean_ns() / 1e6, h.count);
}

// "p50 .. ms  p90 .. ms  p99 .. ms  p99.9 .. ms  max .. ms"
std::string percentiles_text(const LatencyHistogram::Snapshot& h) {
  return fmt::format("p50 {:.3f} ms  p90 {:.3f} ms  p99 {:.3f} ms  p99.9 {:.3f} ms  max {:.3f} ms", ms(h.percentile(0.5)),
                     ms(h.percentile(0.9)), ms(h.percentile(0.99)), ms(h.percentile(0.999)), ms(h.max_ns));
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) out += fmt::format("\\u{:04x}", static_cast<int>(c));
        else out += c;
    }
  }
  return out + "\"";
}

std::string visibility_text(const ProbeReport& v) {
  return fmt::format("visibility  {:.0f} probes/s on their own connection: sent {} acked {} seen {} missing {}; first write to "
                     "visible in another session {} "
                     "(poll every {:.3f} ms, or {:.0f} % of the wait, round trip {:.3f} ms, {} polls)\n"
                     "            due time to visible {}",
                     v.rate, v.sent, v.acked, v.seen, v.missing, percentiles_text(v.visible), v.poll_period_ms,
                     v.poll_fraction * 100, v.poll_round_trip_ms, v.polls, percentiles_text(v.visible_from_due));
}

std::string visibility_json(const ProbeReport& v) {
  const auto& h = v.visible;
  return fmt::format(
      R"(,"visible_ms":{{"p50":{:.4f},"p90":{:.4f},"p99":{:.4f},"p999":{:.4f},"max":{:.4f},"mean":{:.4f},"count":{},)"
      R"("probes_per_s":{:.1f},"sent":{},"acked":{},"rejected":{},"missing":{},"polls":{},"poll_period_ms":{:.4f},)"
      R"("poll_fraction":{:.4f},"poll_round_trip_ms":{:.4f},"probe_ack_p50":{:.4f},"probe_ack_p99":{:.4f},"condition_id":{},)"
      R"("from_due":{}}})",
      ms(h.percentile(0.5)), ms(h.percentile(0.9)), ms(h.percentile(0.99)), ms(h.percentile(0.999)), ms(h.max_ns),
      h.mean_ns() / 1e6, h.count, v.rate, v.sent, v.acked, v.rejected, v.missing, v.polls, v.poll_period_ms,
      v.poll_fraction, v.poll_round_trip_ms, ms(v.ack.percentile(0.5)), ms(v.ack.percentile(0.99)), json_string(v.condition_id),
      percentiles_json(v.visible_from_due));
}

}  // namespace

std::string format_progress(double elapsed_s, const ProgressCounts& totals, std::uint64_t interval_acked,
                            double interval_s, const LatencyHistogram::Snapshot& interval) {
  return fmt::format("[{:6.1f}s] sent {} acked {} rejected {} unacked {} | rate {:.0f}/s | ack p50 {:.2f} ms p99 {:.2f} ms{}",
                     elapsed_s, totals.written, totals.acked, totals.rejected, totals.unacked,
                     interval_s > 0 ? static_cast<double>(interval_acked) / interval_s : 0.0, ms(interval.percentile(0.50)),
                     ms(interval.percentile(0.99)),
                     totals.reconnects ? fmt::format(" | reconnects {}", totals.reconnects) : std::string());
}

std::string format_text(const RunSummary& s) {
  std::string out;
  auto line = [&](const std::string& l) { out += l + "\n"; };
  line(fmt::format("events      {} offered, {} lines written ({} resent after reconnects, {} busy replies)", s.events,
                   s.written, s.resent, s.busy));
  line(fmt::format("acked       {}   rejected {}   unacked {}   reconnects {}{}", s.acked, s.rejected, s.unacked, s.reconnects,
                   s.gave_up ? fmt::format("   GAVE UP on {} connection(s)", s.gave_up) : std::string()));
  line(fmt::format("throughput  {:.0f} events/s acked over {:.3f} s ({} connection(s), rate {})", s.throughput_eps, s.seconds,
                   s.connections, s.target_rate > 0 ? fmt::format("{:.0f}/s", s.target_rate) : std::string("unlimited")));
  line(fmt::format("ack latency {}  (mean {:.3f} ms, {} samples; from each line's first write)", percentiles_text(s.latency),
                   s.latency.mean_ns() / 1e6, s.latency.count));
  line(fmt::format("            {}  (from each line's due time)", percentiles_text(s.latency_from_due)));
  if (s.target_rate > 0) line(fmt::format("pacing      at most {:.3f} ms behind schedule", s.behind_schedule_max_ms));
  if (s.errors_by_reason.empty()) {
    line("errors      none");
  } else {
    std::string e;
    for (const auto& [reason, n] : s.errors_by_reason) e += fmt::format(" {}={}", reason, n);
    line("errors     " + e);
  }
  if (s.end_to_end_seconds) {
    line(fmt::format("end to end  {} rows visible in PostgreSQL {:.3f} s after the first line was sent = {:.0f} rows/s",
                     s.end_to_end_rows.value_or(0), *s.end_to_end_seconds,
                     *s.end_to_end_seconds > 0 ? static_cast<double>(s.end_to_end_rows.value_or(0)) / *s.end_to_end_seconds : 0.0));
  }
  if (s.verify) {
    const VerifyReport& v = *s.verify;
    line(fmt::format("verify      {}: trades acked {} stored {} missing {} duplicated {} extra {} (in doubt {}); "
                     "trigger pairs acked {} rows {} missing {} G2-violations {} wrong-token {} extra {} ({:.2f} s)",
                     v.ok ? "OK" : "MISMATCH", v.trades_acked, v.trades_stored, v.trades_missing, v.trades_duplicated,
                     v.trades_extra, v.trades_in_doubt, v.trigger_pairs_acked, v.trigger_rows, v.trigger_pairs_missing,
                     v.trigger_g2_violations, v.trigger_wrong_token, v.trigger_extra, v.seconds));
    for (const auto& p : v.problems) line("  " + p);
  }
  if (s.visibility) line(visibility_text(*s.visibility));
  return out;
}

std::string format_json(const RunSummary& s) {
  std::string out = "{";
  out += fmt::format(R"("events":{},"gave_up":{},"written":{},"acked":{},"rejected":{},"busy":{},"resent":{},"reconnects":{},"unacked":{},)",
                     s.events, s.gave_up, s.written, s.acked, s.rejected, s.busy, s.resent, s.reconnects, s.unacked);
  out += fmt::format(R"("seconds":{:.6f},"throughput_eps":{:.1f},"target_rate":{:.1f},"connections":{},"behind_schedule_max_ms":{:.3f},)",
                     s.seconds, s.throughput_eps, s.target_rate, s.connections, s.behind_schedule_max_ms);
  out += R"("ack_latency_ms":)" + percentiles_json(s.latency) + R"(,"ack_from_due_ms":)" + percentiles_json(s.latency_from_due) + ",";
  out += "\"errors_by_reason\":{";
  bool first = true;
  for (const auto& [reason, n] : s.errors_by_reason) {
    out += fmt::format("{}{}:{}", first ? "" : ",", json_string(reason), n);
    first = false;
  }
  out += "}";
  if (s.end_to_end_seconds) {
    const double rows = static_cast<double>(s.end_to_end_rows.value_or(0));
    out += fmt::format(R"(,"end_to_end":{{"seconds":{:.6f},"rows":{},"rows_per_s":{:.1f}}})", *s.end_to_end_seconds,
                       s.end_to_end_rows.value_or(0), *s.end_to_end_seconds > 0 ? rows / *s.end_to_end_seconds : 0.0);
  }
  if (s.verify) {
    const VerifyReport& v = *s.verify;
    out += fmt::format(
        R"(,"verify":{{"ok":{},"trades_acked":{},"trades_stored":{},"trades_missing":{},"trades_duplicated":{},"trades_extra":{},)"
        R"("trades_in_doubt":{},"trigger_pairs_acked":{},"trigger_rows":{},"trigger_pairs_missing":{},"trigger_g2_violations":{},)"
        R"("trigger_wrong_token":{},"trigger_extra":{},"seconds":{:.3f},"problems":[)",
        v.ok ? "true" : "false", v.trades_acked, v.trades_stored, v.trades_missing, v.trades_duplicated, v.trades_extra,
        v.trades_in_doubt, v.trigger_pairs_acked, v.trigger_rows, v.trigger_pairs_missing, v.trigger_g2_violations,
        v.trigger_wrong_token, v.trigger_extra, v.seconds);
    for (std::size_t i = 0; i < v.problems.size(); ++i) out += (i ? "," : "") + json_string(v.problems[i]);
    out += "]}";
  }
  if (s.visibility) out += visibility_json(*s.visibility);
  return out + "}";
}

}  // namespace pm::loadgen

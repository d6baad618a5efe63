#include "ingest/writer/batch_applier.h"

#include <algorithm>
#include <map>

#include "ingest/events/event_json.h"
#include "repos/util/clock.h"
#include "ingest/writer/ingest_checkpoint_repository.h"
#include "repos/pg_array.h"
#include "repos/trade_repository.h"
#include "repos/trigger_repository.h"

namespace pm {

namespace {

TradeRow to_row(const TradeEvent& t, TimestampUnit unit) {
  return trade_row_from(t, from_epoch_ms(t.timestamp_ms, unit));
}

PolymarketFirstTrigger to_row(const TriggerEvent& g, const std::string& created_at) {
  PolymarketFirstTrigger row;
  row.token_id = g.token_id;
  row.condition_id = g.condition_id;
  row.threshold = g.threshold;
  row.trigger_timestamp = g.trigger_timestamp_ms;
  row.price = g.price;
  row.size = g.size;
  row.created_at = created_at;
  row.model_score = g.model_score;
  row.model_version = g.model_version;
  row.outcome = g.outcome;
  row.outcome_index = g.outcome_index;
  return row;
}

}  // namespace

BatchCounts BatchApplier::apply(pqxx::dbtransaction& tx, std::span<const QueuedEvent> events,
                                DuplicateProbe probe) const {
  const std::vector<TradeRow> rows = trade_rows(events);
  const TradeStage stage = insert_trades(tx, rows, probe);
  return finish(tx, events, rows, stage);
}

std::vector<TradeRow> BatchApplier::trade_rows(std::span<const QueuedEvent> events) const {
  std::vector<TradeRow> rows;
  rows.reserve(events.size());
  for (const auto& q : events)
    if (const auto* t = std::get_if<TradeEvent>(&q.event.body)) rows.push_back(to_row(*t, unit_));
  return rows;
}

TradeStage BatchApplier::insert_trades(pqxx::dbtransaction& tx, std::span<const TradeRow> rows, DuplicateProbe probe,
                                       std::span<const TradeKeySet* const> in_flight, OwedStatements* owed) const {
  TradeStage stage;
  stage.trades = rows.size();
  if (rows.empty()) return stage;
  const TradeRepository trades(tx, unit_, FutureBound::CheckedOnArrival);
  const auto insert = [&](std::span<const TradeRow> r) {
    return owed != nullptr ? trades.insert_rows(r, probe, *owed) : trades.insert_rows(r, probe);
  };
  if (in_flight.empty()) {
    stage.inserted = insert(rows);
    return stage;
  }
  std::vector<TradeRow> candidates;
  std::vector<std::size_t> origin;  // index in `rows` of each candidate
  candidates.reserve(rows.size());
  origin.reserve(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const bool in_earlier_batch = std::any_of(in_flight.begin(), in_flight.end(),
                                              [&](const TradeKeySet* keys) { return keys->contains(rows[i]); });
    if (in_earlier_batch) continue;
    candidates.push_back(rows[i]);
    origin.push_back(i);
  }
  for (std::size_t k : insert(candidates)) stage.inserted.push_back(origin[k]);
  return stage;
}

namespace {

std::string arrival_iso(const QueuedEvent& q) { return format_iso_ms(q.event.received_ms); }

bool has_triggers(std::span<const QueuedEvent> events) {
  return std::any_of(events.begin(), events.end(),
                     [](const QueuedEvent& q) { return std::holds_alternative<TriggerEvent>(q.event.body); });
}

// Each trade row's arrival time (epoch ms), in row order (the batch's trades in log order).
std::vector<std::int64_t> trade_arrivals(std::span<const QueuedEvent> events) {
  std::vector<std::int64_t> out;
  out.reserve(events.size());
  for (const auto& q : events)
    if (std::holds_alternative<TradeEvent>(q.event.body)) out.push_back(q.event.received_ms);
  return out;
}

}  // namespace

// Every time written here comes from the events (their arrival), never from the clock, so a replay
// of the log (pm-ingestctl replay) writes the same rows; the library's 24-h bound on timestamps is
// not applied again (FutureBound::CheckedOnArrival: the daemon checked each event on arrival). The trade watermarks and the checkpoint go
// in one query, with what `owed` holds in front of them.
BatchCounts BatchApplier::finish(pqxx::dbtransaction& tx, std::span<const QueuedEvent> events, std::span<const TradeRow> rows,
                                 const TradeStage& stage, OwedStatements* owed, std::optional<std::int64_t> follows) const {
  OwedStatements none;
  OwedStatements& before = owed != nullptr ? *owed : none;
  BatchCounts counts;
  for (const auto& q : events) counts.newest_event_ms = std::max(counts.newest_event_ms, q.event.event_time_ms());
  counts.trades = stage.trades;
  counts.trades_inserted = stage.inserted.size();
  if (has_triggers(events)) {
    before.flush(tx);  // the triggers' statements have parameters
    record_triggers(tx, events, counts);
  }
  std::vector<std::string> statements;
  if (!stage.inserted.empty()) {
    std::string marks = TradeRepository(tx, unit_, FutureBound::CheckedOnArrival).watermark_statement(rows, stage.inserted, trade_arrivals(events));
    if (!marks.empty()) statements.push_back(std::move(marks));
  }
  const IngestCheckpoint checkpoint = checkpoint_at(events.back(), events.size(), follows);
  statements.push_back(IngestCheckpointRepository::save_statement(tx, checkpoint));
  const std::vector<std::uint64_t> affected = exec_together(tx, before, statements);
  if (statements.size() == 2) counts.trade_watermarks = affected.front();
  IngestCheckpointRepository::check_saved(checkpoint, affected.back());
  return counts;
}

// G2 claims in log order; each threshold's watermark moves to its newest recorded trigger, with the
// arrival of the first trigger holding that timestamp.
void BatchApplier::record_triggers(pqxx::dbtransaction& tx, std::span<const QueuedEvent> events, BatchCounts& counts) const {
  std::vector<const QueuedEvent*> triggers;
  std::vector<PolymarketFirstTrigger> rows;
  for (const auto& q : events)
    if (const auto* g = std::get_if<TriggerEvent>(&q.event.body)) {
      triggers.push_back(&q);
      rows.push_back(to_row(*g, arrival_iso(q)));  // created_at: its arrival
    }
  counts.triggers = triggers.size();
  if (triggers.empty()) return;
  const std::vector<TriggerOutcome> outcomes = TriggerRepository(tx, FutureBound::CheckedOnArrival).record_first_many(rows);
  std::map<float, TriggerWatermarkRepository::Advance> newest;  // by the REAL key PostgreSQL compares
  for (std::size_t i = 0; i < triggers.size(); ++i) {
    const TriggerEvent& g = std::get<TriggerEvent>(triggers[i]->event.body);
    switch (outcomes[i]) {
      case TriggerOutcome::Recorded: {
        ++counts.triggers_recorded;
        auto [it, fresh] = newest.try_emplace(real_as_sent(g.threshold), TriggerWatermarkRepository::Advance{g.threshold, g.trigger_timestamp_ms, rows[i].created_at});
        if (!fresh && g.trigger_timestamp_ms > it->second.timestamp) it->second = {g.threshold, g.trigger_timestamp_ms, rows[i].created_at};
        break;
      }
      case TriggerOutcome::DuplicateSameToken: ++counts.triggers_same_token; break;
      case TriggerOutcome::DuplicateOtherToken: ++counts.triggers_other_token; break;
    }
  }
  std::vector<TriggerWatermarkRepository::Advance> marks;
  for (auto& [key, mark] : newest) marks.push_back(std::move(mark));
  TriggerWatermarkRepository(tx, FutureBound::CheckedOnArrival).advance(marks);
  counts.trigger_watermarks = marks.size();
}

BatchCounts BatchApplier::dead_letter(pqxx::dbtransaction& tx, const QueuedEvent& event, const std::string& error,
                                      const std::string& sqlstate, std::optional<std::int64_t> follows) const {
  DeadLetter letter;
  letter.instance_id = instance_id_;
  letter.log_id = log_id_;
  letter.lsn = static_cast<std::int64_t>(event.lsn);
  letter.event_type = to_string(event.event.type());
  letter.payload = event_to_json(event.event);
  letter.error = error;
  if (!sqlstate.empty()) letter.sqlstate = sqlstate;
  const bool stored = DeadLetterRepository(tx).add(letter);
  IngestCheckpointRepository(tx).save(checkpoint_at(event, 1, follows));
  BatchCounts counts;
  counts.dead_lettered = 1;
  counts.dead_letter_rows = stored ? 1 : 0;
  return counts;
}

IngestCheckpoint BatchApplier::checkpoint_at(const QueuedEvent& last, std::size_t events,
                                             std::optional<std::int64_t> follows) const {
  IngestCheckpoint c;
  c.follows = follows;
  c.instance_id = instance_id_;
  c.log_id = log_id_;
  c.lsn = static_cast<std::int64_t>(last.lsn);
  c.segment = static_cast<std::int64_t>(last.end.segment);
  c.segment_offset = static_cast<std::int64_t>(last.end.offset);
  c.log_offset = static_cast<std::int64_t>(last.end.log_offset);
  c.applied_events = static_cast<std::int64_t>(events);
  if (last.record_bytes > 0) c.record = CheckpointRecord{last.record_bytes, last.payload_crc};
  return c;
}

}  // namespace pm

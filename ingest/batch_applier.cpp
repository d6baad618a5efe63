#include "ingest/batch_applier.h"

#include <map>

#include "ingest/protocol.h"
#include "repos/clock.h"
#include "repos/ingest_checkpoint_repository.h"
#include "repos/trade_repository.h"
#include "repos/trigger_repository.h"

namespace pm {

namespace {

PolymarketTrade to_row(const TradeEvent& t, TimestampUnit unit) {
  PolymarketTrade row;
  row.condition_id = t.condition_id;
  row.trade_id = t.trade_id;
  row.token_id = t.token_id;
  row.price = t.price;
  row.size = t.size;
  row.side = t.side;
  row.timestamp = from_epoch_ms(t.timestamp_ms, unit);
  row.raw_json = t.raw_json;
  row.outcome = t.outcome;
  row.outcome_index = t.outcome_index;
  return row;
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

BatchCounts BatchApplier::apply(pqxx::transaction_base& tx, std::span<const QueuedEvent> events,
                                DuplicateProbe probe) const {
  BatchCounts counts;
  std::vector<PolymarketTrade> trades;
  trades.reserve(events.size());
  std::vector<const TriggerEvent*> triggers;
  for (const auto& q : events) {
    counts.newest_event_ms = std::max(counts.newest_event_ms, q.event.event_time_ms());
    if (const auto* t = std::get_if<TradeEvent>(&q.event.body)) {
      trades.push_back(to_row(*t, unit_));
    } else {
      triggers.push_back(&std::get<TriggerEvent>(q.event.body));
    }
  }
  counts.trades = trades.size();
  if (!trades.empty()) {
    const TradeBatchResult r = TradeRepository(tx, unit_).ingest_batch(trades, probe);
    counts.trades_inserted = r.inserted;
    counts.trade_watermarks = r.watermarks_advanced;
  }
  counts.triggers = triggers.size();
  if (!triggers.empty()) {
    const std::string created_at = now_iso();
    std::vector<PolymarketFirstTrigger> rows;
    rows.reserve(triggers.size());
    for (const TriggerEvent* g : triggers) rows.push_back(to_row(*g, created_at));
    const std::vector<TriggerOutcome> outcomes = TriggerRepository(tx).record_first_many(rows);
    std::map<float, std::pair<double, std::int64_t>> newest_by_threshold;  // REAL key -> (threshold, ts)
    for (std::size_t i = 0; i < triggers.size(); ++i) {
      const TriggerEvent* g = triggers[i];
      switch (outcomes[i]) {
        case TriggerOutcome::Recorded: {
          ++counts.triggers_recorded;
          auto& slot = newest_by_threshold[static_cast<float>(g->threshold)];
          slot.first = g->threshold;
          slot.second = std::max(slot.second, g->trigger_timestamp_ms);
          break;
        }
        case TriggerOutcome::DuplicateSameToken: ++counts.triggers_same_token; break;
        case TriggerOutcome::DuplicateOtherToken: ++counts.triggers_other_token; break;
      }
    }
    TriggerWatermarkRepository marks(tx);
    for (const auto& [key, newest] : newest_by_threshold) marks.update(newest.first, newest.second);
    counts.trigger_watermarks = newest_by_threshold.size();
  }
  save_checkpoint(tx, events.back(), events.size());
  return counts;
}

BatchCounts BatchApplier::dead_letter(pqxx::transaction_base& tx, const QueuedEvent& event, const std::string& error,
                                      const std::string& sqlstate) const {
  DeadLetter letter;
  letter.instance_id = instance_id_;
  letter.lsn = static_cast<std::int64_t>(event.lsn);
  letter.event_type = to_string(event.event.type());
  letter.payload = event_to_json(event.event);
  letter.error = error;
  if (!sqlstate.empty()) letter.sqlstate = sqlstate;
  DeadLetterRepository(tx).add(letter);
  save_checkpoint(tx, event, 1);
  BatchCounts counts;
  counts.dead_lettered = 1;
  return counts;
}

void BatchApplier::save_checkpoint(pqxx::transaction_base& tx, const QueuedEvent& last, std::size_t events) const {
  IngestCheckpoint c;
  c.instance_id = instance_id_;
  c.log_id = log_id_;
  c.lsn = static_cast<std::int64_t>(last.lsn);
  c.segment = static_cast<std::int64_t>(last.end.segment);
  c.segment_offset = static_cast<std::int64_t>(last.end.offset);
  c.log_offset = static_cast<std::int64_t>(last.end.log_offset);
  c.applied_events = static_cast<std::int64_t>(events);
  IngestCheckpointRepository(tx).save(c);
}

}  // namespace pm

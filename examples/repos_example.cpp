// The storage library in a few lines: open a Database from DATABASE_URL, record a trigger with G2
// protection, read the recent trades of a market with the G1 staleness limit.
// Run against a migrated database: DATABASE_URL=postgresql://... ./repos_example
#include <exception>
#include <iostream>

#include "repos/util/clock.h"
#include "repos/trade_repository.h"
#include "repos/trigger_repository.h"

int main() try {
  pm::Database db(pm::DatabaseConfig::from_env());  // DATABASE_URL, else the private cluster
  db.initialize();

  pm::PolymarketFirstTrigger trigger;
  trigger.token_id = "0xtoken123";
  trigger.condition_id = "0xabc123";  // G2: one trigger per (condition, threshold), any token
  trigger.threshold = 0.95;
  trigger.trigger_timestamp = pm::now_epoch_ms();
  trigger.price = 0.95;
  // One atomic statement: exactly one caller wins, however many race for this threshold.
  const pm::TriggerOutcome outcome = pm::TriggerRepository(db).record_first(trigger);
  std::cout << "trigger: " << pm::to_string(outcome) << '\n';

  // G1: only trades at most 300 s old (in the configured timestamp unit), newest first.
  for (const pm::PolymarketTrade& t : pm::TradeRepository(db).get_recent("0xabc123", 300))
    std::cout << t.trade_id << " price " << t.price.value_or(0.0) << '\n';
  return 0;
} catch (const std::exception& e) {
  std::cerr << "repos_example: " << e.what() << '\n';
  return 1;
}

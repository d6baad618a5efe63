#pragma once
// WatermarkUpsert: the one statement that moves a watermark row forward, for every watermark table
// (trade_watermarks keyed by condition_id TEXT, trigger_watermarks keyed by threshold REAL). Such a
// table has a key column (its primary key), last_timestamp BIGINT and updated_at TEXT, and its
// last_timestamp never moves backwards: it becomes GREATEST(stored, new). updated_at is now
// (now_iso()).
// The SQL is built once, at construction; the object is then immutable, and any thread may use it
// with its own transaction. The statements run in the caller's transaction; nothing here commits.
#include <cstddef>
#include <cstdint>
#include <string>

#include <pqxx/row>
#include <pqxx/transaction_base>

#include "repos/pg_array.h"

namespace pm {

class WatermarkUpsert {
 public:
  // `key_type`: the key column's SQL type (text, real), which parameters are cast to.
  WatermarkUpsert(const std::string& table, const std::string& key_column, const std::string& key_type);

  // One key: its row inserted, or moved to GREATEST(stored, timestamp); updated_at is set even when
  // the timestamp does not advance. Returns the stored row (RETURNING *).
  pqxx::row one(pqxx::transaction_base& tx, const std::string& key, std::int64_t timestamp) const;
  pqxx::row one(pqxx::transaction_base& tx, double key, std::int64_t timestamp) const;

  // Many keys in one statement: keys[i] with timestamps[i] (array literals of equal length, keys
  // distinct). Each row is inserted or moved forward; a row that would not advance is left alone
  // (updated_at not rewritten either). Rows are taken in key order, so concurrent batches do not
  // deadlock on each other. Returns how many rows were inserted or moved forward.
  std::size_t many(pqxx::transaction_base& tx, const PgArray& keys, const PgArray& timestamps) const;
  // The same with updated_at[i] for each key instead of now: what an event-sourced writer stores
  // (the arrival time of the event that moved the watermark), so a replay writes the same rows.
  std::size_t many(pqxx::transaction_base& tx, const PgArray& keys, const PgArray& timestamps,
                   const PgArray& updated_at) const;
  // That statement as SQL text with the arrays inline (quoted by tx), for a caller that sends it
  // with others in one query (exec_together); its affected rows are the count many() returns.
  std::string many_statement(const pqxx::transaction_base& tx, const PgArray& keys, const PgArray& timestamps,
                             const PgArray& updated_at) const;

 private:
  // The many-keys statement with updated_at per key, given its three array expressions.
  std::string many_each(const std::string& keys, const std::string& timestamps, const std::string& updated_at) const;

  std::string key_type_;
  std::string insert_;        // INSERT INTO table (columns)
  std::string forward_only_;  // ON CONFLICT ... DO UPDATE ... WHERE it moves forward
  std::string one_sql_;
  std::string many_sql_;
  std::string many_each_sql_;
};

}  // namespace pm

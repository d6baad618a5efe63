#include "repos/watermark_upsert.h"

#include "repos/util/clock.h"

namespace pm {

WatermarkUpsert::WatermarkUpsert(const std::string& table, const std::string& key_column, const std::string& key_type) {
  const std::string insert = "INSERT INTO " + table + " (" + key_column + ", last_timestamp, updated_at)\n";
  const std::string upsert = "ON CONFLICT (" + key_column + ") DO UPDATE\n"
                             "  SET last_timestamp = GREATEST(" + table + ".last_timestamp, EXCLUDED.last_timestamp),\n"
                             "      updated_at = EXCLUDED.updated_at\n";
  one_sql_ = insert + "VALUES ($1::" + key_type + ", $2, $3)\n" + upsert + "RETURNING *";
  const std::string forward_only = "  WHERE " + table + ".last_timestamp < EXCLUDED.last_timestamp";
  many_sql_ = insert + "SELECT k, ts, $3 FROM unnest($1::" + key_type + "[], $2::bigint[]) AS w(k, ts) ORDER BY k\n" +
              upsert + forward_only;
  many_each_sql_ = insert + "SELECT k, ts, u FROM unnest($1::" + key_type + "[], $2::bigint[], $3::text[]) AS w(k, ts, u) ORDER BY k\n" +
                   upsert + forward_only;
}

pqxx::row WatermarkUpsert::one(pqxx::transaction_base& tx, const std::string& key, std::int64_t timestamp) const {
  return tx.exec_params1(one_sql_, key, timestamp, now_iso());
}

pqxx::row WatermarkUpsert::one(pqxx::transaction_base& tx, double key, std::int64_t timestamp) const {
  return tx.exec_params1(one_sql_, key, timestamp, now_iso());
}

std::size_t WatermarkUpsert::many(pqxx::transaction_base& tx, const PgArray& keys, const PgArray& timestamps) const {
  return tx.exec_params(many_sql_, keys.str(), timestamps.str(), now_iso()).affected_rows();
}

std::size_t WatermarkUpsert::many(pqxx::transaction_base& tx, const PgArray& keys, const PgArray& timestamps,
                                  const PgArray& updated_at) const {
  return tx.exec_params(many_each_sql_, keys.str(), timestamps.str(), updated_at.str()).affected_rows();
}

}  // namespace pm

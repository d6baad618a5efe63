#include "repos/watermark_upsert.h"

#include "repos/util/clock.h"

namespace pm {

WatermarkUpsert::WatermarkUpsert(const std::string& table, const std::string& key_column, const std::string& key_type)
    : key_type_(key_type) {
  insert_ = "INSERT INTO " + table + " (" + key_column + ", last_timestamp, updated_at)\n";
  const std::string upsert = "ON CONFLICT (" + key_column + ") DO UPDATE\n"
                             "  SET last_timestamp = GREATEST(" + table + ".last_timestamp, EXCLUDED.last_timestamp),\n"
                             "      updated_at = EXCLUDED.updated_at\n";
  one_sql_ = insert_ + "VALUES ($1::" + key_type + ", $2, $3)\n" + upsert + "RETURNING *";
  forward_only_ = upsert + "  WHERE " + table + ".last_timestamp < EXCLUDED.last_timestamp";
  many_sql_ = insert_ + "SELECT k, ts, $3 FROM unnest($1::" + key_type + "[], $2::bigint[]) AS w(k, ts) ORDER BY k\n" +
              forward_only_;
  many_each_sql_ = many_each("$1", "$2", "$3");
}

std::string WatermarkUpsert::many_each(const std::string& keys, const std::string& timestamps,
                                       const std::string& updated_at) const {
  return insert_ + "SELECT k, ts, u FROM unnest(" + keys + "::" + key_type_ + "[], " + timestamps + "::bigint[], " +
         updated_at + "::text[]) AS w(k, ts, u) ORDER BY k\n" + forward_only_;
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

std::string WatermarkUpsert::many_statement(const pqxx::transaction_base& tx, const PgArray& keys,
                                            const PgArray& timestamps, const PgArray& updated_at) const {
  return many_each(tx.quote(keys.str()), tx.quote(timestamps.str()), tx.quote(updated_at.str()));
}

}  // namespace pm

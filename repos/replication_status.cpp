#include "repos/replication_status.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <stdexcept>

#include <pqxx/pqxx>

namespace pm {

namespace {

std::uint32_t parse_hex_half(std::string_view half, std::string_view whole) {
  std::uint32_t value = 0;
  const auto [end, ec] = std::from_chars(half.data(), half.data() + half.size(), value, 16);
  if (half.empty() || half.size() > 8 || ec != std::errc() || end != half.data() + half.size())
    throw std::invalid_argument("not a WAL position (pg_lsn): '" + std::string(whole) + "'");
  return value;
}

// Physical slots, then WAL senders that are streaming (not a base backup) without a slot (a
// sender through a slot is that slot's row; a logical one is never promoted).
constexpr const char* kStandbysQuery = R"SQL(
SELECT 'slot ' || slot_name || CASE WHEN wal_status IN ('lost', 'unreserved') THEN ' (wal_status ' || wal_status || ')' ELSE '' END,
       restart_lsn::text
  FROM pg_replication_slots WHERE slot_type = 'physical'
UNION ALL
SELECT 'sender ' || coalesce(nullif(application_name, ''), '?') || ' ' || coalesce(client_addr::text, 'local'),
       flush_lsn::text
  FROM pg_stat_replication
 WHERE coalesce(state, '') <> 'backup'
   AND pid NOT IN (SELECT active_pid FROM pg_replication_slots WHERE active_pid IS NOT NULL)
)SQL";

}  // namespace

std::uint64_t parse_pg_lsn(std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) throw std::invalid_argument("not a WAL position (pg_lsn): '" + std::string(text) + "'");
  const std::uint64_t high = parse_hex_half(text.substr(0, slash), text);
  const std::uint64_t low = parse_hex_half(text.substr(slash + 1), text);
  return (high << 32) | low;
}

std::string format_pg_lsn(std::uint64_t lsn) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(lsn >> 32), static_cast<unsigned>(lsn & 0xffffffffu));
  return buf;
}

std::uint64_t wal_record_end(std::uint64_t insert_lsn, std::uint64_t block_size, std::uint64_t segment_size) {
  constexpr std::uint64_t kShortPageHeader = 24;  // SizeOfXLogShortPHD (MAXALIGNed)
  constexpr std::uint64_t kLongPageHeader = 40;   // SizeOfXLogLongPHD: a segment's first page
  if (segment_size > 0 && insert_lsn % segment_size == kLongPageHeader) return insert_lsn - kLongPageHeader;
  if (block_size > 0 && insert_lsn % block_size == kShortPageHeader) return insert_lsn - kShortPageHeader;
  return insert_lsn;
}

std::optional<std::uint64_t> ReplicationStatus::confirmed_lsn() const {
  std::uint64_t confirmed = flushed_lsn;
  for (const auto& standby : standbys) {
    if (!standby.flushed) return std::nullopt;
    confirmed = std::min(confirmed, *standby.flushed);
  }
  return confirmed;
}

std::string ReplicationStatus::unknown_positions() const {
  std::string names;
  for (const auto& standby : standbys)
    if (!standby.flushed) names += (names.empty() ? "" : ", ") + standby.name;
  return names;
}

ReplicationStatus read_replication_status(pqxx::transaction_base& tx) {
  ReplicationStatus status;
  const pqxx::row head = tx.exec1("SELECT pg_is_in_recovery()");
  status.in_recovery = head[0].as<bool>();
  if (status.in_recovery) return status;
  const pqxx::row primary = tx.exec1(
      "SELECT pg_current_wal_insert_lsn()::text, pg_current_wal_flush_lsn()::text, "
      "pg_walfile_name(pg_current_wal_insert_lsn()), "
      "current_setting('wal_block_size')::bigint, (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size')");
  status.current_lsn = parse_pg_lsn(primary[0].as<std::string>());
  status.flushed_lsn = parse_pg_lsn(primary[1].as<std::string>());
  status.timeline = static_cast<std::uint32_t>(std::stoul(primary[2].as<std::string>().substr(0, 8), nullptr, 16));
  status.last_record_end = wal_record_end(status.current_lsn, primary[3].as<std::uint64_t>(), primary[4].as<std::uint64_t>());
  for (const auto& row : tx.exec(kStandbysQuery)) {
    StandbyPosition standby{row[0].as<std::string>(), std::nullopt};
    if (!row[1].is_null()) standby.flushed = parse_pg_lsn(row[1].as<std::string>());
    status.standbys.push_back(std::move(standby));
  }
  return status;
}

}  // namespace pm

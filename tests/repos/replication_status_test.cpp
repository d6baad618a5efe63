// repos/replication_status.h: WAL positions, and what a server without standbys confirms.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "repos/replication_status.h"
#include "tests/support/test_database.h"

namespace pm {
namespace {

TEST(ReplicationStatus, WalPositionsParseAndPrintAsPostgresWritesThem) {
  EXPECT_EQ(parse_pg_lsn("16/B374D848"), 0x16B374D848u);
  EXPECT_EQ(parse_pg_lsn("0/0"), 0u);
  EXPECT_EQ(parse_pg_lsn("FFFFFFFF/FFFFFFFF"), ~0ull);
  EXPECT_EQ(format_pg_lsn(0x16B374D848u), "16/B374D848");
  for (const char* bad : {"", "16", "/1", "1/", "G/1", "1/2/3", "123456789/0", " 1/2"})
    EXPECT_THROW(parse_pg_lsn(bad), std::invalid_argument) << bad;
}

TEST(ReplicationStatus, ARecordEndsBeforeThePageHeaderTheInsertPositionStepsOver) {
  constexpr std::uint64_t block = 8192, segment = 16 << 20;
  EXPECT_EQ(wal_record_end(5 * block + 24, block, segment), 5 * block) << "a page's short header";
  EXPECT_EQ(wal_record_end(3 * segment + 40, block, segment), 3 * segment) << "a segment's first page: the long header";
  EXPECT_EQ(wal_record_end(5 * block + 100, block, segment), 5 * block + 100) << "inside a page: the position itself";
  EXPECT_EQ(wal_record_end(5 * block + 40, block, segment), 5 * block + 40) << "40 bytes in is a long header only at a segment's start";
  EXPECT_EQ(wal_record_end(5 * block, block, segment), 5 * block);
}

TEST(ReplicationStatus, TheSlowestStandbyConfirmsAndAnUnknownPositionConfirmsNothing) {
  ReplicationStatus status;
  status.current_lsn = 1000;
  status.flushed_lsn = 990;
  EXPECT_EQ(status.confirmed_lsn(), 990u) << "no standby: what the primary has flushed";
  status.standbys = {{"slot a", 900}, {"sender b 127.0.0.1", 700}};
  EXPECT_EQ(status.confirmed_lsn(), 700u);
  EXPECT_EQ(status.unknown_positions(), "");
  status.standbys.push_back({"sender c local", std::nullopt});
  EXPECT_EQ(status.confirmed_lsn(), std::nullopt);
  EXPECT_EQ(status.unknown_positions(), "sender c local");
}

TEST(ReplicationStatus, AServerWithoutStandbysIsAPrimaryThatConfirmsItsOwnPosition) {
  test::TestDatabase tdb("replication_status");
  pqxx::connection c(tdb.url());
  pqxx::work tx(c);
  const ReplicationStatus status = read_replication_status(tx);
  EXPECT_FALSE(status.in_recovery);
  EXPECT_GT(status.current_lsn, 0u);
  EXPECT_TRUE(status.standbys.empty());
  EXPECT_LE(status.flushed_lsn, status.current_lsn);
  EXPECT_LE(status.last_record_end, status.current_lsn);
  EXPECT_GE(status.last_record_end + 40, status.current_lsn);
  EXPECT_EQ(status.confirmed_lsn(), status.flushed_lsn);
  EXPECT_GE(status.timeline, 1u);
}

}  // namespace
}  // namespace pm

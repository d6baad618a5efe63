// D8: pm_text_time() (seed/06_text_time.sql) and parse_iso() (clock.h) read one set of ISO-8601
// shapes the same way; pm_text_time never errors and ignores the session's TimeZone and DateStyle.
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <pqxx/pqxx>

#include "repos/migrator.h"
#include "repos/util/clock.h"
#include "tests/repos/legacy_times.h"
#include "tests/support/test_database.h"

namespace pm {
namespace {

struct TextTimeCase {
  const char* text;
  const char* utc;  // the canonical UTC text of the instant, or nullptr: not a time
};

// Every row holds for both readers.
const TextTimeCase kCases[] = {
    {"2024-01-10T09:00:00.000000Z", "2024-01-10T09:00:00.000000Z"},  // the library's own shape
    {"2024-01-10 10:00", "2024-01-10T10:00:00.000000Z"},             // no zone: UTC
    {"2024-01-10T10:00", "2024-01-10T10:00:00.000000Z"},
    {"2024-01-10 10:00:30", "2024-01-10T10:00:30.000000Z"},
    {"2024-07-10T10:00:00", "2024-07-10T10:00:00.000000Z"},  // summer: New York is UTC-4 then
    {"2024-01-10T09:00:00+00:00", "2024-01-10T09:00:00.000000Z"},
    {"2024-01-10T09:00:00Z", "2024-01-10T09:00:00.000000Z"},
    {"2024-01-10T11:00:00+02:00", "2024-01-10T09:00:00.000000Z"},
    {"2024-01-10T11:00:00+0200", "2024-01-10T09:00:00.000000Z"},
    {"2024-01-10T11:00:00+02", "2024-01-10T09:00:00.000000Z"},
    {"2024-01-10T04:00:00-05:00", "2024-01-10T09:00:00.000000Z"},
    {"2024-01-10T09:00+05:30", "2024-01-10T03:30:00.000000Z"},
    {"2024-01-10", "2024-01-10T00:00:00.000000Z"},  // a date alone: midnight UTC
    {"2024-02-29", "2024-02-29T00:00:00.000000Z"},
    {"2024-01-10T09:00:00.5", "2024-01-10T09:00:00.500000Z"},
    {"2024-01-10T09:00:00.123", "2024-01-10T09:00:00.123000Z"},
    {"2024-01-10T09:00:00.1234567899Z", "2024-01-10T09:00:00.123456Z"},  // truncated, not rounded
    {"2024-01-10T09:00:00.1+01:00", "2024-01-10T08:00:00.100000Z"},
    {"2024-01-10T23:59:60Z", "2024-01-11T00:00:00.000000Z"},  // a leap second rolls over
    {"2024-13-10T09:00:00Z", nullptr},                         // month 13
    {"2024-00-10", nullptr},
    {"2023-02-29", nullptr},
    {"2024-02-30T00:00:00Z", nullptr},
    {"2024-01-32", nullptr},
    {"2024-01-10T24:00", nullptr},
    {"2024-01-10T09:60", nullptr},
    {"2024-01-10T09:00:61", nullptr},
    {"2024-01-10T09:00:00+24:00", nullptr},
    {"2024-01-10T09:00:00+01:60", nullptr},
    {"2024-01-10T09:00:00+05:", nullptr},
    {"2024-01-10T09:00:00+5", nullptr},
    {"2024-01-10T10:00.5", nullptr},  // a fraction needs seconds
    {"2024-01-10T09:00:00.Z", nullptr},
    {"2024-01-10T09:00:00 Z", nullptr},
    {"2024-01-10Z", nullptr},
    {"2024-01-10T09", nullptr},
    {"2024-01-10t09:00:00z", nullptr},
    {"20240110T090000Z", nullptr},
    {"2024-1-10", nullptr},
    {" 2024-01-10", nullptr},
    {"2024-01-10 ", nullptr},
    {"0000-01-01", nullptr},
    {"garbage", nullptr},
    {"", nullptr},
};

TEST(TextTime, ParseIsoReadsEveryCase) {
  for (const auto& c : kCases) {
    const auto got = canonical_iso(c.text);
    if (c.utc)
      EXPECT_EQ(got, std::optional<std::string>(c.utc)) << c.text;
    else
      EXPECT_FALSE(got) << c.text << " read as " << *got;
  }
}

TEST(TextTime, ParseIsoRefusesInstantsOutsideSystemTime) {
  // SystemTime counts nanoseconds in a 64-bit integer (about 1678 to 2261); these used to wrap.
  EXPECT_FALSE(canonical_iso("1500-01-01T00:00:00Z"));
  EXPECT_FALSE(canonical_iso("2300-01-01"));
  EXPECT_TRUE(canonical_iso("1970-01-01T00:00:00Z"));
  EXPECT_TRUE(canonical_iso("2200-01-01T00:00:00Z"));
}

TEST(TextTime, TheLegacyFixtureIsNotInTextOrder) {
  auto text_order = test::kLegacyTimesOldestFirst;
  std::sort(text_order.begin(), text_order.end());
  EXPECT_NE(text_order, test::kLegacyTimesOldestFirst);
  SystemTime previous = SystemTime::min();
  for (const auto& t : test::kLegacyTimesOldestFirst) {
    const auto parsed = parse_iso(t);
    ASSERT_TRUE(parsed) << t;
    EXPECT_LT(previous, *parsed) << t;
    previous = *parsed;
  }
  EXPECT_FALSE(parse_iso(test::kNotATime));
}

class PmTextTimeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tdb_ = new test::TestDatabase("text_time"); }
  static void TearDownTestSuite() { delete tdb_; }
  static test::TestDatabase* tdb_;
};
test::TestDatabase* PmTextTimeTest::tdb_ = nullptr;

// The instant as canonical UTC text, formatted in SQL independently of the session; nullopt for NULL.
std::optional<std::string> sql_text_time(pqxx::transaction_base& tx, const std::optional<std::string>& text) {
  const auto row = tx.exec_params1(
      R"(SELECT to_char(pm_text_time($1::text) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))", text);
  if (row[0].is_null()) return std::nullopt;
  return row[0].as<std::string>();
}

TEST_F(PmTextTimeTest, ReadsEveryCaseWhateverTheSessionZone) {
  pqxx::connection conn(tdb_->url());
  pqxx::work tx(conn);
  tx.exec("SET LOCAL TimeZone = 'America/New_York'");
  tx.exec("SET LOCAL DateStyle = 'SQL, DMY'");
  // The session's zone is in force: a plain cast would read zone-less text as New York time.
  EXPECT_EQ(tx.exec1("SELECT to_char('2024-01-10 10:00'::timestamptz AT TIME ZONE 'UTC', 'HH24:MI')")[0]
                .as<std::string>(),
            "15:00");
  for (const auto& c : kCases) {
    const auto got = sql_text_time(tx, std::string(c.text));
    if (c.utc)
      EXPECT_EQ(got, std::optional<std::string>(c.utc)) << c.text;
    else
      EXPECT_FALSE(got) << c.text << " read as " << *got;
  }
  EXPECT_FALSE(sql_text_time(tx, std::nullopt));
  // Years SystemTime cannot hold are still times in SQL.
  EXPECT_EQ(sql_text_time(tx, std::string("0001-01-01")), "0001-01-01T00:00:00.000000Z");
  EXPECT_EQ(sql_text_time(tx, std::string("9999-12-31T23:59:59Z")), "9999-12-31T23:59:59.000000Z");
}

TEST_F(PmTextTimeTest, OrdersLegacyTextByTime) {
  pqxx::connection conn(tdb_->url());
  pqxx::work tx(conn);
  tx.exec("SET LOCAL TimeZone = 'Asia/Kolkata'");
  tx.exec("CREATE TEMP TABLE legacy (id serial, v text NOT NULL)");
  test::insert_legacy_rows([&](const std::string& v) { tx.exec_params("INSERT INTO legacy (v) VALUES ($1)", v); });
  const auto list = [&](const std::string& order_by) {
    std::vector<std::string> out;
    for (const auto& row : tx.exec("SELECT v FROM legacy ORDER BY " + order_by)) out.push_back(row[0].as<std::string>());
    return out;
  };
  EXPECT_EQ(list("pm_text_time(v) DESC NULLS LAST, v DESC, id DESC"), test::legacy_newest_first());
  EXPECT_EQ(list("pm_text_time(v) ASC NULLS LAST, v ASC, id ASC"), test::legacy_oldest_first());
  EXPECT_NE(list("v DESC, id DESC"), test::legacy_newest_first());  // what the text order gave
}

TEST_F(PmTextTimeTest, NeverErrorsOverATableOfAnything) {
  pqxx::connection conn(tdb_->url());
  pqxx::work tx(conn);
  tx.exec("CREATE TEMP TABLE anything (v text)");
  for (const auto& c : kCases) tx.exec_params("INSERT INTO anything VALUES ($1)", std::string(c.text));
  tx.exec("INSERT INTO anything VALUES (NULL), ('2024-99-99T99:99:99+99:99'), ('9999-12-31T23:59:59-23:59')");
  const auto not_times = std::count_if(std::begin(kCases), std::end(kCases),
                                       [](const TextTimeCase& c) { return c.utc == nullptr; });
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM anything WHERE pm_text_time(v) IS NULL")[0].as<long>(), not_times + 2);
}

TEST_F(PmTextTimeTest, IsImmutableStrictAndReappliesCleanly) {
  EXPECT_EQ(tdb_->count("SELECT count(*) FROM pg_proc WHERE proname = 'pm_text_time' AND provolatile = 'i' "
                        "AND proisstrict"),
            1);
  const auto& ms = bundled_migrations();
  const auto m = std::find_if(ms.begin(), ms.end(), [](const Migration& x) { return x.name == "06_text_time.sql"; });
  ASSERT_NE(m, ms.end());
  EXPECT_NO_THROW(tdb_->exec(m->sql));  // CREATE OR REPLACE
  EXPECT_EQ(tdb_->count("SELECT count(*) FROM pg_proc WHERE proname = 'pm_text_time'"), 1);
}

}  // namespace
}  // namespace pm

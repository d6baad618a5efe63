#include <gtest/gtest.h>

#include <limits>

#include "repos/util/clock.h"
#include "repos/database_config.h"
#include "repos/timestamp_unit.h"

namespace pm {
namespace {

using namespace std::chrono;

TEST(Clock, IsoFormatIsFixedWidthUtcWithZ) {
  const SystemTime t = sys_days{year{2026} / 11 / 23} + hours{22} + minutes{31} + seconds{5};
  EXPECT_EQ(format_iso(t), "2026-11-23T22:31:05.000000Z");
  EXPECT_EQ(format_iso(t + microseconds{123456}), "2026-11-23T22:31:05.123456Z");
  EXPECT_EQ(format_iso_ms(1'700'000'000'123), "2023-11-14T22:13:20.123000Z");
  EXPECT_EQ(now_iso().size(), 27u);
}

TEST(Clock, TextOrderFollowsTimeOrder) {
  const SystemTime t = sys_days{year{2024} / 1 / 10} + hours{9};
  EXPECT_LT(format_iso(t), format_iso(t + hours{1}));
  EXPECT_LT(format_iso(t + microseconds{999999}), format_iso(t + seconds{1}));
}

TEST(Clock, ParsesOtherWritersFormats) {
  EXPECT_EQ(canonical_iso("2024-01-10 10:00"), "2024-01-10T10:00:00.000000Z");
  EXPECT_EQ(canonical_iso("2024-01-10T09:00:00.5"), "2024-01-10T09:00:00.500000Z");
  EXPECT_EQ(canonical_iso("2024-01-10T09:00:00+00:00"), "2024-01-10T09:00:00.000000Z");
  EXPECT_EQ(canonical_iso("2024-01-10T11:00:00+02:00"), "2024-01-10T09:00:00.000000Z");
  EXPECT_EQ(canonical_iso("2024-01-10T09:00:00.123456Z"), "2024-01-10T09:00:00.123456Z");
  EXPECT_FALSE(canonical_iso("yesterday"));
  EXPECT_FALSE(canonical_iso("2024-02-30T00:00:00Z"));
}

TEST(Clock, EpochsAreUtc) {
  const auto ms = now_epoch_ms();
  const auto s = now_epoch_s();
  EXPECT_LE(std::llabs(ms / 1000 - s), 1);
  const auto parsed = parse_iso(format_iso(system_clock::time_point(milliseconds(ms))));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(duration_cast<milliseconds>(parsed->time_since_epoch()).count(), ms);
}

TEST(TimestampUnit, ParsesAndConverts) {
  EXPECT_EQ(parse_timestamp_unit("ms"), TimestampUnit::Milliseconds);
  EXPECT_EQ(parse_timestamp_unit("s"), TimestampUnit::Seconds);
  EXPECT_FALSE(parse_timestamp_unit("us"));
  EXPECT_EQ(from_epoch_ms(1'700'000'000'123, TimestampUnit::Seconds), 1'700'000'000);
  EXPECT_EQ(from_epoch_ms(1'700'000'000'123, TimestampUnit::Milliseconds), 1'700'000'000'123);
}

TEST(TimestampUnit, CutoffNeverAdmitsATooOldValue) {
  const std::int64_t now_ms = 1'700'000'000'900;
  EXPECT_EQ(staleness_cutoff(now_ms, 300, TimestampUnit::Milliseconds), now_ms - 300'000);
  // 1'699'999'700'900 ms is the oldest allowed instant; second 1'699'999'700 began 900 ms before it.
  EXPECT_EQ(staleness_cutoff(now_ms, 300, TimestampUnit::Seconds), 1'699'999'701);
  EXPECT_EQ(staleness_cutoff(1'700'000'000'000, 300, TimestampUnit::Seconds), 1'699'999'700);
}

// max_age_seconds * 1000 overflowed for huge ages ("everything"): the cut-off wrapped into the
// future and get_recent returned nothing.
TEST(TimestampUnit, AnAgeBeyondTheEpochRangeSaturatesInsteadOfWrapping) {
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  const std::int64_t now_ms = 1'700'000'000'900;
  for (const TimestampUnit unit : {TimestampUnit::Milliseconds, TimestampUnit::Seconds}) {
    EXPECT_EQ(staleness_cutoff(now_ms, kMax, unit), kMin);
    EXPECT_EQ(staleness_cutoff(now_ms, kMax / 1000 + 1, unit), kMin);
    EXPECT_EQ(staleness_cutoff(now_ms, kMin, unit), kMax);  // a negative age: nothing is recent
  }
  EXPECT_EQ(staleness_cutoff(now_ms, 1'700'000'000, TimestampUnit::Milliseconds), 900);
  EXPECT_EQ(staleness_cutoff(kMax - 500, 0, TimestampUnit::Seconds), kMax / 1000 + 1);
}

TEST(DatabaseConfig, DefaultsMatchTheOriginal) {
  DatabaseConfig config;
  EXPECT_EQ(config.min_connections, 2);
  EXPECT_EQ(config.max_connections, 10);
  EXPECT_EQ(config.statement_timeout, std::chrono::seconds(60));
  EXPECT_EQ(config.trade_timestamp_unit, TimestampUnit::Milliseconds);
  EXPECT_NO_THROW(config.validate());
}

TEST(DatabaseConfig, RejectsInconsistentPoolSizes) {
  DatabaseConfig config;
  config.min_connections = 5;
  config.max_connections = 2;
  try {
    config.validate();
    FAIL() << "expected invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("min_connections"), std::string::npos);
  }
}

TEST(DatabaseConfig, RedactsPasswords) {
  EXPECT_EQ(redact_url("postgresql://predict:s3cret@localhost:5433/predict"),
            "postgresql://predict:***@localhost:5433/predict");
  EXPECT_EQ(redact_url("postgresql://predict@localhost/predict"), "postgresql://predict@localhost/predict");
  EXPECT_EQ(redact_url("host=localhost password=s3cret user=x"), "host=localhost password=*** user=x");
  EXPECT_EQ(redact_url("postgresql://localhost/db?user=a&password=s3cret"),
            "postgresql://localhost/db?user=a&password=***");
  // Issue 18, item 4: every form libpq parses, and URLs quoted inside a message.
  EXPECT_EQ(redact_url("host=h password = S3cret user=x"), "host=h password = *** user=x");
  EXPECT_EQ(redact_url("host=h password='S3cret PW4' user=x"), "host=h password=*** user=x");
  EXPECT_EQ(redact_url("host=h password='it\\'s PW' user=x"), "host=h password=*** user=x");
  EXPECT_EQ(redact_url("--wal-max-bytes: 'postgresql://predict:S3cretF@localhost/db' is not a byte count"),
            "--wal-max-bytes: 'postgresql://predict:***@localhost/db' is not a byte count");
  EXPECT_EQ(redact_url("PASSWORD=S3cret"), "PASSWORD=***");
  for (const std::string& text : {std::string("host=h password = S3cret"), std::string("password='S3cret PW4'"),
                                  std::string("x postgresql://u:S3cret@h/db?password=S3cret")})
    EXPECT_EQ(redact_url(text).find("S3cret"), std::string::npos) << text;
  // Quotes inside a URL's password, and '&' in an unquoted key = value one (libpq ends that at a blank).
  EXPECT_EQ(redact_url("postgresql://u:pa'S3cret@h/db"), "postgresql://u:***@h/db");
  EXPECT_EQ(redact_url("postgresql://u:pa\"S3cret@h/db"), "postgresql://u:***@h/db");
  EXPECT_EQ(redact_url("host=h password=ab&S3cret user=x"), "host=h password=*** user=x");
  // The passphrase of the client's TLS key, libpq's sslpassword, in both forms: it was shown.
  EXPECT_EQ(redact_url("postgresql://u@h/db?sslkey=/k&sslpassword=S3cret"), "postgresql://u@h/db?sslkey=/k&sslpassword=***");
  EXPECT_EQ(redact_url("postgresql://u:pw@h/db?sslpassword=S3cret&sslmode=require"),
            "postgresql://u:***@h/db?sslpassword=***&sslmode=require");
  EXPECT_EQ(redact_url("host=h sslpassword=S3cret user=x"), "host=h sslpassword=*** user=x");
  EXPECT_EQ(redact_url("host=h sslpassword = 'S3cret PW' user=x"), "host=h sslpassword = *** user=x");
}

// libpq ends URL userinfo at the first '@' and looks for it only before the first '/': a password
// holding either is masked whole, up to the last '@', and its pieces libpq reads as port, host or
// database are known once the URL is, wherever they appear bare.
TEST(DatabaseConfig, AUrlPasswordHoldingASlashOrAnAtIsMaskedWhole) {
  for (const std::string& url : {std::string("postgresql://u:S3c/ret@h/db"), std::string("postgresql://u:ab@cd@h/db")}) {
    const std::string redacted = redact_url(url);
    for (const char* secret : {"S3c", "ret@", "cd@"}) EXPECT_EQ(redacted.find(secret), std::string::npos) << redacted;
    EXPECT_EQ(redacted, "postgresql://u:***@h/db");
  }
  EXPECT_EQ(redact_url("x 'postgresql://u:a/b@c@h:5/db' y@z"), "x 'postgresql://u:***@h:5/db' y@z");
  EXPECT_EQ(redact_url("postgresql://predict@localhost:5433/db?application_name=a@b"),
            "postgresql://predict@localhost:5433/db?application_name=a@b");
  remember_passwords_of("postgresql://u:Tq7/Zk9s@h/db");
  EXPECT_EQ(redact_url("invalid integer value \"Tq7\" for connection option \"port\""),
            "invalid integer value \"***\" for connection option \"port\"");
  EXPECT_EQ(redact_url("database \"Zk9s@h\" does not exist"), "database \"***@h\" does not exist");
}

// A password made known is masked wherever it appears, as written, as libpq decodes it, unquoted.
TEST(DatabaseConfig, AKnownPasswordIsMaskedWhereverItAppearsBare) {
  remember_passwords_of("postgresql://u:50%zzK9pw@h/db");
  EXPECT_EQ(redact_url("invalid percent-encoded token: \"50%zzK9pw\""), "invalid percent-encoded token: \"***\"");
  remember_passwords_of("postgresql://u:a%41bQ7pw@h/db");
  EXPECT_EQ(redact_url("role said aAbQ7pw twice: aAbQ7pw"), "role said *** twice: ***");
  remember_passwords_of("host=h password='sp ace\\'Z3pw'");
  EXPECT_EQ(redact_url("x sp ace'Z3pw y"), "x *** y");
  // A known password overlapping a pattern's span is masked whole.
  EXPECT_EQ(redact_url("postgresql://u:K9@h/db?x=50%zzK9pw"), "postgresql://u:***@h/db?x=***");
  EXPECT_EQ(redact_url("x aAbQ7pwaAbQ7pw y"), "x *** y");
}

}  // namespace
}  // namespace pm

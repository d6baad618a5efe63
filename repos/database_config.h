#pragma once
// DatabaseConfig: how a Database connects, pools, times out and retries (storage-api.md 1.1 in
// C++ form). A plain value; `validate()` checks the cross-field rules the original left to the
// driver. The URL may carry a password: print it only through redact_url().
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "repos/timestamp_unit.h"

namespace pm {

inline constexpr const char* kDefaultDatabaseUrl = "postgresql://predict:predict@localhost:5433/predict";

struct DatabaseConfig {
  std::string url = kDefaultDatabaseUrl;
  int min_connections = 2;
  int max_connections = 10;
  std::chrono::milliseconds statement_timeout{60'000};  // 0 = no limit
  std::chrono::milliseconds acquire_timeout{30'000};    // wait for a free pooled connection
  std::chrono::milliseconds connect_timeout{10'000};    // per connection attempt (libpq connect_timeout, whole seconds, at least 2)
  // health_check()/ensure_healthy(): the longest one check may take (ensure_healthy: twice this).
  std::chrono::milliseconds health_check_timeout{1'000};

  // TCP keepalives on every connection (libpq keepalives*): a server that vanished without closing
  // the connection is noticed after about idle + interval * count seconds (14 s by default).
  // A parameter the URL sets itself wins (connection_string.h).
  bool keepalives = true;
  std::chrono::seconds keepalives_idle{5};
  std::chrono::seconds keepalives_interval{3};
  int keepalives_count = 3;
  // libpq's tcp_user_timeout on every connection (0: not set): data sent that the server's host
  // does not acknowledge for this long ends the connection. Keepalives never probe a connection
  // with data in flight, so without it a query or COPY sent as the host vanished waits out TCP's
  // retransmissions (~15 minutes). Linux applies it to a server that stops reading, too: a COPY
  // whose rest fills the socket buffers while the server waits that long (a row waiting on another
  // session's uncommitted duplicate key) fails as a lost connection, and is retried. 30 s: below
  // the statement timeout that would end such a wait anyway. A URL's own value wins.
  std::chrono::milliseconds tcp_user_timeout{30'000};
  // Every session also sets the server's side of both (tcp_keepalives_idle/interval/count and
  // tcp_user_timeout: its socket to this client): a backend waiting for data from a client that
  // vanished mid-COPY is not ended by any statement or idle timeout, and held the rows it had
  // taken until the server's kernel gave up on the connection.

  // The server's side, set in every session: PostgreSQL ends a session left idle inside a
  // transaction this long (idle_in_transaction_session_timeout; a stricter value the server, role
  // or database sets is kept; 0: the server's own setting is left as it is). A client that vanished
  // without closing its connection (its host lost power, a partition) otherwise left its
  // transaction open, with its locks (the ingest writer's checkpoint row and uncommitted keys,
  // which the restarted writer's retries waited on), until the server's kernel gave up on the
  // connection: ~2 h 11 min on Linux. A body that stays idle inside a transaction longer than this
  // loses its session (a connection error); so does a writer batch waiting that long for its turn
  // behind a COMMIT stuck on a synchronous standby (it is retried; the checkpoint decides).
  std::chrono::milliseconds idle_in_transaction_timeout{120'000};

  // Opening a connection: attempts with exponential backoff (plus jitter) between them.
  int reconnect_max_attempts = 5;
  std::chrono::milliseconds reconnect_initial_delay{1'000};
  std::chrono::milliseconds reconnect_max_delay{60'000};
  double reconnect_multiplier = 2.0;

  // Transactions that fail on a connection-level error before COMMIT was sent are re-run, up to
  // retry_max_attempts runs in all. retry_transactions = false makes Database::transaction() run
  // its body once (a per-call TxOptions overrides it); execute/fetch* still re-run their one
  // statement. The original never retried a transaction.
  bool retry_transactions = true;
  int retry_max_attempts = 3;
  std::chrono::milliseconds retry_initial_delay{100};
  std::chrono::milliseconds retry_max_delay{2'000};
  double retry_multiplier = 2.0;  // backoff factor between retries (the original hard-coded 2: D14)

  // Unit of polymarket_trades.timestamp, shared with the daemon (see timestamp_unit.h).
  TimestampUnit trade_timestamp_unit = TimestampUnit::Milliseconds;

  // The config with `url` from DATABASE_URL and `trade_timestamp_unit` from
  // PM_INGESTD_TRADE_TIMESTAMP_UNIT (the daemon's setting: ms or s) when set (read at call time),
  // else the defaults. Throws std::invalid_argument for another unit.
  static DatabaseConfig from_env();
  static constexpr const char* kTradeTimestampUnitVariable = "PM_INGESTD_TRADE_TIMESTAMP_UNIT";

  // Throws std::invalid_argument naming the offending field.
  void validate() const;
};

// The URL (or any text quoting one) with every password replaced by "***": URL userinfo (from the
// first ':' after "scheme://user" to the last '@' of the whitespace-free text, so a password
// holding '/' or '@' is masked whole; a port or query after an '@' may be masked with it), the
// ?password= parameter, libpq's key = value form (spaces around '=', quoted values), and every
// known password (repos/known_passwords.h) wherever it appears. Any thread.
std::string redact_url(const std::string& url);
// Where those passwords are in `text`: (offset, length) pairs, ascending, possibly overlapping.
std::vector<std::pair<std::size_t, std::size_t>> password_spans(const std::string& text);
// Makes the password(s) of a connection string known (as written, unquoted, percent-decoded, and
// as libpq reads it), so redact_url() masks them even where they appear bare. A URL's userinfo
// password counts as written up to the last '@' even where libpq reads none (a '/' in it), and its
// pieces between / @ ? & = , : of 3 characters or more are known too (libpq reads them as port,
// host or database and may quote them). Database's constructor calls it; so should anything that
// prints errors about a URL it has not given to one.
void remember_passwords_of(const std::string& conninfo);

}  // namespace pm

#include "repos/server_probe.h"

#include <poll.h>

#include <cerrno>
#include <memory>

#include <libpq-fe.h>

#include "repos/addressed_connection_string.h"

namespace pm {

namespace {

using Clock = std::chrono::steady_clock;

struct Finish {
  void operator()(PGconn* c) const { PQfinish(c); }
};

// Waits for the connection's socket to be writable (or readable); false at the deadline or on error.
bool wait_socket(PGconn* c, bool for_write, Clock::time_point deadline) {
  const int fd = PQsocket(c);
  if (fd < 0) return false;
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
    const int n = ::poll(&p, 1, static_cast<int>(left));
    if (n > 0) return true;
    if (n == 0 || errno != EINTR) return false;
  }
}

// PQconnectPoll's loop (libpq docs, "Connecting to the database server, non-blocking").
bool connect_by(PGconn* c, Clock::time_point deadline) {
  if (c == nullptr || PQstatus(c) == CONNECTION_BAD) return false;
  PostgresPollingStatusType state = PGRES_POLLING_WRITING;
  for (;;) {
    if (state == PGRES_POLLING_OK) return true;
    if (state == PGRES_POLLING_FAILED) return false;
    if (!wait_socket(c, state == PGRES_POLLING_WRITING, deadline)) return false;
    state = PQconnectPoll(c);
  }
}

bool select_one_by(PGconn* c, Clock::time_point deadline) {
  if (PQsetnonblocking(c, 1) != 0 || PQsendQuery(c, "SELECT 1") == 0) return false;
  for (int pending = PQflush(c); pending != 0; pending = PQflush(c))
    if (pending < 0 || !wait_socket(c, true, deadline)) return false;
  bool answered = false;
  for (;;) {
    while (PQisBusy(c) != 0)
      if (!wait_socket(c, false, deadline) || PQconsumeInput(c) == 0) return false;
    PGresult* result = PQgetResult(c);
    if (result == nullptr) return answered;
    answered = PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1;
    PQclear(result);
  }
}

}  // namespace

bool probe_server(const std::string& connection_string, std::chrono::milliseconds timeout) noexcept {
  try {
    const auto deadline = Clock::now() + timeout;
    const std::string addressed = with_host_addresses(connection_string, deadline);
    const std::unique_ptr<PGconn, Finish> c(PQconnectStart(addressed.c_str()));
    return connect_by(c.get(), deadline) && select_one_by(c.get(), deadline);
  } catch (const std::exception&) {  // no host name resolved in time; no thread or memory
    return false;
  }
}

}  // namespace pm

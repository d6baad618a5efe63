#include "repos/server_probe.h"

#include <arpa/inet.h>
#include <poll.h>

#include <cerrno>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include <libpq-fe.h>

#include "repos/host_lookup.h"

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

std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> items;
  std::string::size_type start = 0;
  for (;;) {
    const auto comma = list.find(',', start);
    items.push_back(list.substr(start, comma - start));
    if (comma == std::string::npos) return items;
    start = comma + 1;
  }
}

std::string join_list(const std::vector<std::string>& items) {
  std::string list;
  for (std::size_t i = 0; i < items.size(); ++i) list += (i == 0 ? "" : ",") + items[i];
  return list;
}

// libpq connects to this host without a name lookup: a socket directory, an abstract socket, or a
// numeric address.
bool needs_no_lookup(const std::string& host) {
  if (host.empty() || host[0] == '/' || host[0] == '@') return true;
  unsigned char address[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, host.c_str(), address) == 1 || ::inet_pton(AF_INET6, host.c_str(), address) == 1;
}

// The connection's parameters by keyword (those set, in the string or by libpq's defaults).
std::optional<std::map<std::string, std::string>> parameters_of(const std::string& connection_string) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(connection_string.c_str(), &error);
  if (options == nullptr) {
    PQfreemem(error);
    return std::nullopt;
  }
  std::map<std::string, std::string> parameters;
  for (const PQconninfoOption* o = options; o->keyword != nullptr; ++o)
    if (o->val != nullptr) parameters[o->keyword] = o->val;
  PQconninfoFree(options);
  return parameters;
}

// Looks up the host names of `parameters` by the deadline and names each address in hostaddr (one
// host entry per address, its port repeated), as libpq would try them, so that connecting does no
// lookup of its own (libpq's lookup is not bounded). False when a name does not resolve by then.
bool resolve_hosts_by(std::map<std::string, std::string>& parameters, Clock::time_point deadline) {
  if (!parameters.count("host") || parameters.count("hostaddr")) return true;  // a socket, or addresses given
  const std::vector<std::string> hosts = split_list(parameters["host"]);
  const std::vector<std::string> ports = parameters.count("port") ? split_list(parameters["port"]) : std::vector<std::string>{};
  const bool port_per_host = ports.size() > 1 && ports.size() == hosts.size();
  std::vector<std::string> out_hosts, out_addresses, out_ports;
  bool looked_up = false;
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    const std::string port = port_per_host ? ports[i] : "";
    if (needs_no_lookup(hosts[i])) {
      out_hosts.push_back(hosts[i]), out_addresses.emplace_back(), out_ports.push_back(port);
      continue;
    }
    const auto addresses = addresses_by(hosts[i], deadline);
    if (!addresses) {
      if (Clock::now() >= deadline) return false;
      continue;  // libpq would go on to the next host
    }
    looked_up = true;
    for (const std::string& address : *addresses)
      out_hosts.push_back(hosts[i]), out_addresses.push_back(address), out_ports.push_back(port);
  }
  if (out_hosts.empty()) return false;
  if (!looked_up) return true;
  parameters["host"] = join_list(out_hosts);
  parameters["hostaddr"] = join_list(out_addresses);
  if (port_per_host) parameters["port"] = join_list(out_ports);
  return true;
}

PGconn* start_connecting(const std::map<std::string, std::string>& parameters) {
  std::vector<const char*> keywords, values;
  for (const auto& [keyword, value] : parameters) keywords.push_back(keyword.c_str()), values.push_back(value.c_str());
  keywords.push_back(nullptr), values.push_back(nullptr);
  return PQconnectStartParams(keywords.data(), values.data(), 0);
}

}  // namespace

bool probe_server(const std::string& connection_string, std::chrono::milliseconds timeout) noexcept {
  try {
    const auto deadline = Clock::now() + timeout;
    auto parameters = parameters_of(connection_string);
    if (!parameters || !resolve_hosts_by(*parameters, deadline)) return false;
    const std::unique_ptr<PGconn, Finish> c(start_connecting(*parameters));
    return connect_by(c.get(), deadline) && select_one_by(c.get(), deadline);
  } catch (const std::exception&) {  // out of memory
    return false;
  }
}

}  // namespace pm

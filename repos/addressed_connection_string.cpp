#include "repos/addressed_connection_string.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <utility>
#include <vector>

#include "repos/connection_string.h"
#include "repos/host_lookup.h"

namespace pm {

namespace {

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

// libpq connects to this host without a name lookup: the default, a socket directory, an abstract
// socket, or a numeric address.
bool needs_no_lookup(const std::string& host) {
  if (host.empty() || host[0] == '/' || host[0] == '@') return true;
  unsigned char address[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, host.c_str(), address) == 1 || ::inet_pton(AF_INET6, host.c_str(), address) == 1;
}

// key='value' with \ and ' escaped (libpq's key=value syntax).
std::string key_value_string(const std::map<std::string, std::string>& parameters) {
  std::string out;
  for (const auto& [keyword, value] : parameters) {
    out += (out.empty() ? "" : " ") + keyword + "='";
    for (const char c : value) {
      if (c == '\\' || c == '\'') out += '\\';
      out += c;
    }
    out += '\'';
  }
  return out;
}

std::chrono::steady_clock::time_point now() { return std::chrono::steady_clock::now(); }

// libpq would take a host address, port list or service from the environment, which the rewritten
// string would no longer match: leave such strings to libpq.
bool environment_decides(const std::map<std::string, std::string>& parameters) {
  return parameters.count("service") || std::getenv("PGSERVICE") != nullptr ||
         (!parameters.count("hostaddr") && std::getenv("PGHOSTADDR") != nullptr);
}

}  // namespace

std::string with_host_addresses(const std::string& connection_string, std::chrono::steady_clock::time_point deadline) {
  auto parameters = parameters_set_by(connection_string);
  if (!parameters || !parameters->count("host") || parameters->count("hostaddr") || environment_decides(*parameters))
    return connection_string;
  const std::vector<std::string> hosts = split_list((*parameters)["host"]);
  if (std::all_of(hosts.begin(), hosts.end(), needs_no_lookup)) return connection_string;
  if (!parameters->count("port") && std::getenv("PGPORT") != nullptr) (*parameters)["port"] = std::getenv("PGPORT");
  const std::vector<std::string> ports =
      parameters->count("port") ? split_list((*parameters)["port"]) : std::vector<std::string>{};
  if (ports.size() > 1 && ports.size() != hosts.size()) return connection_string;  // libpq refuses it
  const bool port_per_host = ports.size() > 1;
  std::map<std::string, HostLookup> lookups;  // all at once: each waits for the deadline below
  for (const std::string& host : hosts)
    if (!needs_no_lookup(host)) lookups.try_emplace(host, host);
  bool one_ready = false;
  // Once a host is ready, the lookups of the hosts after it get half the time left: libpq would try
  // the ready one first and look the others up only if it failed.
  const auto one_is_ready = [&] {
    if (!std::exchange(one_ready, true)) deadline = std::min(deadline, now() + (deadline - now()) / 2);
  };

  std::vector<std::string> out_hosts, out_addresses, out_ports, failures;
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    const std::string port = port_per_host ? ports[i] : "";
    if (needs_no_lookup(hosts[i])) {
      out_hosts.push_back(hosts[i]), out_addresses.emplace_back(), out_ports.push_back(port);
      one_is_ready();
      continue;
    }
    const HostAddresses found = lookups.at(hosts[i]).answer_by(deadline);
    if (found.addresses.empty()) {  // skipped, as libpq skips a host it cannot look up
      failures.push_back("host name \"" + hosts[i] + "\": " + (found.finished ? found.error : "lookup did not finish in time"));
      continue;
    }
    one_is_ready();
    for (const std::string& address : found.addresses)
      out_hosts.push_back(hosts[i]), out_addresses.push_back(address), out_ports.push_back(port);
  }
  if (out_hosts.empty()) {
    std::string why = failures.front();
    for (std::size_t i = 1; i < failures.size(); ++i) why += "; " + failures[i];
    throw HostLookupFailed(why);
  }
  (*parameters)["host"] = join_list(out_hosts);
  (*parameters)["hostaddr"] = join_list(out_addresses);
  if (port_per_host) (*parameters)["port"] = join_list(out_ports);
  return key_value_string(*parameters);
}

}  // namespace pm

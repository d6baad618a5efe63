#pragma once
// name_servers_deny: whether the name servers of resolv.conf themselves answer that a host name
// does not exist, or has neither an IPv4 nor an IPv6 address, under every name getaddrinfo would
// have tried for it (the name as given and with each search domain, in glibc's order: as given
// first when it has at least `ndots` dots or ends in a dot). Any other outcome of any of those
// queries (no answer, a server failure, a refusal, a record found) is "not denied". getaddrinfo's
// own "no such name" cannot say this: it is the last name service's word (nsswitch.conf), and after
// `hosts: files dns myhostname` name servers that never answered end as "not found" too. Blocks for
// the resolver's timeouts (seconds per server when they are silent). Any thread: each call has a
// resolver state of its own.
#include <string>

namespace pm {

bool name_servers_deny(const std::string& host);

}  // namespace pm

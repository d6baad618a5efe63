#include "repos/host_lookup.h"

#include <netdb.h>
#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "repos/name_denial.h"

namespace pm {

namespace detail {

// One name's lookup, shared by the thread that runs it and every caller waiting for it.
struct Lookup {
  std::mutex mu;
  std::condition_variable done_cv;
  bool done = false;
  std::vector<std::string> addresses;
  std::string error;
};

}  // namespace detail

namespace {

using detail::Lookup;

struct LastGood {
  std::vector<std::string> addresses;
  std::chrono::steady_clock::time_point found_at;
};

// The lookups under way, and each name's last good answer, by name. Never destroyed: a lookup
// thread may finish after main returns.
struct Lookups {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<Lookup>> running;
  std::map<std::string, LastGood> last_good;
};

Lookups& lookups() {
  static Lookups* const all = new Lookups;
  return *all;
}

std::optional<std::vector<std::string>> last_good_answer(const std::string& host) {
  std::lock_guard<std::mutex> lock(lookups().mu);
  const auto it = lookups().last_good.find(host);
  if (it == lookups().last_good.end() || std::chrono::steady_clock::now() - it->second.found_at > kLastGoodAnswerMaxAge)
    return std::nullopt;
  return it->second.addresses;
}

// Fills `addresses`, or `error` when there are none, and `no_such_name` when the name servers
// say so (asked only when there is a last good answer to forget: a second round of queries).
void look_up(const std::string& host, std::vector<std::string>& addresses, std::string& error, bool& no_such_name) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int failed = ::getaddrinfo(host.c_str(), nullptr, &hints, &found); failed != 0) {
    error = ::gai_strerror(failed);
    no_such_name = (failed == EAI_NONAME || failed == EAI_NODATA) && last_good_answer(host).has_value() && name_servers_deny(host);
    return;
  }
  try {
    for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
      char text[NI_MAXHOST];
      if (::getnameinfo(a->ai_addr, a->ai_addrlen, text, sizeof text, nullptr, 0, NI_NUMERICHOST) == 0)
        addresses.emplace_back(text);
    }
  } catch (const std::bad_alloc&) {
    addresses.clear();
  }
  ::freeaddrinfo(found);
  if (addresses.empty()) error = "no address to connect to";
}

// On the lookup's own thread: nothing may escape (the process would end), and the waiters are told
// whatever happens.
void run_lookup(const std::string& host, const std::shared_ptr<Lookup>& lookup) {
  std::vector<std::string> addresses;
  std::string error;
  bool no_such_name = false;
  try {
    look_up(host, addresses, error, no_such_name);
  } catch (const std::exception&) {
    addresses.clear();
    error = "out of memory";
  }
  {
    std::lock_guard<std::mutex> lock(lookups().mu);
    auto it = lookups().running.find(host);
    if (it != lookups().running.end() && it->second == lookup) lookups().running.erase(it);
    try {
      if (!addresses.empty()) lookups().last_good[host] = {addresses, std::chrono::steady_clock::now()};
    } catch (const std::exception&) {  // out of memory: the last good answer stays the older one
    }
    if (no_such_name) lookups().last_good.erase(host);
  }
  std::lock_guard<std::mutex> lock(lookup->mu);
  lookup->addresses = std::move(addresses);
  lookup->error = std::move(error);
  lookup->done = true;
  lookup->done_cv.notify_all();
}

// The lookup of `host` under way, or a new one started on a thread of its own. It is recorded only
// once its thread runs (which cannot remove it before this returns: it takes the same mutex).
std::shared_ptr<Lookup> lookup_of(const std::string& host) {
  std::lock_guard<std::mutex> lock(lookups().mu);
  const auto it = lookups().running.find(host);
  if (it != lookups().running.end()) return it->second;
  auto lookup = std::make_shared<Lookup>();
  std::thread(run_lookup, host, lookup).detach();
  lookups().running.emplace(host, lookup);
  return lookup;
}

std::atomic<std::uint64_t> stale_answers{0};


}  // namespace

HostLookup::HostLookup(const std::string& host) : host_(host), lookup_(lookup_of(host)) {}

HostAddresses HostLookup::wait_until(std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock<std::mutex> lock(lookup_->mu);
  if (!lookup_->done_cv.wait_until(lock, deadline, [&] { return lookup_->done; })) return {};
  return {true, lookup_->addresses, lookup_->error};
}

HostAddresses HostLookup::answer_by(std::chrono::steady_clock::time_point deadline) const {
  const auto now = std::chrono::steady_clock::now();
  if (last_good_answer(host_) && deadline > now) deadline = now + (deadline - now) / 2;
  HostAddresses fresh = wait_until(deadline);
  if (!fresh.addresses.empty()) return fresh;
  // After a denial there is none: run_lookup forgets it before it says the lookup is done.
  std::optional<std::vector<std::string>> last_good = last_good_answer(host_);
  if (!last_good) return fresh;
  fresh.addresses = std::move(*last_good);
  fresh.stale = true;
  stale_answers.fetch_add(1, std::memory_order_relaxed);
  return fresh;
}

std::uint64_t stale_answers_served() { return stale_answers.load(std::memory_order_relaxed); }

}  // namespace pm

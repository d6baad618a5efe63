#pragma once
// HttpEndpoint: the daemon's small HTTP listener (--metrics-listen, default 127.0.0.1:9464).
//
//   GET /metrics  the registry in the Prometheus text format (prometheus::TextSerializer)
//   GET /healthz  200 {"status":"alive"} while the process serves HTTP at all (liveness)
//   GET /readyz   200 or 503 with {"status":"ready"|"not_ready","checks":{name:{"ok":..,"detail":..}},
//                 "failing":[names]} from the readiness function (readiness)
//   anything else 404; methods other than GET and HEAD 405.
//
// Why not prometheus::Exposer: it serves only the registries' own paths, so /healthz and /readyz
// cannot sit next to /metrics on one port. Why civetweb: prometheus-cpp's pull library is built on
// it already (Debian libcivetweb-dev), so it costs no new dependency, and it brings a tested HTTP/1.x
// parser, request timeouts and a fixed worker pool; a hand-written server would have to redo all of
// that. Debian's civetweb 1.15 is built without IPv6, so listen addresses are IPv4
// ("127.0.0.1:9464", "0.0.0.0:9464"; "localhost:9464" is taken as 127.0.0.1), as they were with
// the Exposer, which uses the same library. Every response carries
// Content-Length and closes its connection (no keep-alive: an idle scraper cannot pin a worker).
//
// Slow and abusive clients: 96 worker threads, and a request's header must arrive (and each write
// of a response complete) within 5 s, so 64 clients that connect and say nothing, trickle their
// headers or never read still leave workers free: /healthz and /readyz answer in milliseconds
// beside them (tests/ops/http_abuse_test.cpp).
//
// metrics/ knows nothing of ingest/: the readiness report comes from a function the daemon sets
// once its parts exist. Until then (and after set_readiness({})) /readyz answers 503 "starting".
//
// Thread-safety: handlers run on civetweb's worker threads. set_readiness() may be called from any
// thread; when it returns, no handler still runs the previous function, so clearing it before the
// objects it reads are destroyed is safe.
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/collectable.h>

struct mg_context;
struct mg_connection;

namespace pm {

struct ReadinessCheck {
  std::string name;    // e.g. "database_reachable"
  bool ok = false;
  std::string detail;  // short, human-readable
};

struct ReadinessReport {
  std::vector<ReadinessCheck> checks;
  bool ready() const;
  // {"status":"ready","checks":{...},"failing":[]}
  std::string to_json() const;
};

// Whether this build's HTTP server can listen on an IPv6 address (Debian's civetweb: no). Any thread.
bool http_endpoint_serves_ipv6();

class HttpEndpoint {
 public:
  using Readiness = std::function<ReadinessReport()>;

  // Starts listening on `listen` ("ipv4:port"). Throws std::runtime_error naming the address and
  // the reason when it cannot bind (in use, not an address, IPv6 without civetweb support).
  HttpEndpoint(const std::string& listen, std::shared_ptr<prometheus::Collectable> collectable);
  ~HttpEndpoint();  // stops the server and waits for its threads
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  void set_readiness(Readiness readiness);
  // The bound TCP port (useful with port 0).
  int port() const { return port_; }

  // A readiness report computed now by the readiness function, as /readyz would serve it (an empty
  // report, not ready, while none is set); for tests and the daemon's own gauges.
  ReadinessReport readiness() const;

 private:
  static int handle(mg_connection* conn, void* self);
  int serve(mg_connection* conn);

  std::shared_ptr<prometheus::Collectable> collectable_;
  mutable std::mutex readiness_mu_;
  Readiness readiness_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
};

// JSON string escaping for the small bodies above.
std::string json_escape(const std::string& text);

}  // namespace pm

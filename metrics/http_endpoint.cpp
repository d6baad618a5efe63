#include "metrics/http_endpoint.h"

#include <civetweb.h>

#include <cstdio>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

namespace pm {

namespace {

// Enough workers that 64 clients holding one each (slow headers, silent connections, responses
// they do not read) leave 32 for probes and scrapes; each costs a 16 KiB request buffer and a
// thread. A request's header must arrive, and each write of a response must complete, within the
// request timeout, so a held worker is freed after about that long.
constexpr const char* kWorkerThreadsText = "96";
constexpr const char* kRequestTimeoutMsText = "5000";
// Room for connections accepted but not yet taken by a worker (civetweb's default: 20), and in the
// kernel's queue of connections not yet accepted (default: 200). A connection that does not fit
// there is dropped at its SYN, and the client retries only after a second: the abuse test's
// probe that took 1.009 s under AddressSanitizer, with 64 clients reconnecting ~3,000 times a
// second, was most likely one (the machine had counted 736 ListenOverflows).
constexpr const char* kConnectionQueueText = "256";
constexpr const char* kListenBacklogText = "1024";

constexpr const char* kJson = "application/json";
constexpr const char* kText = "text/plain; charset=utf-8";
constexpr const char* kPrometheusText = "text/plain; version=0.0.4; charset=utf-8";

const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

int respond(mg_connection* conn, int status, const char* content_type, const std::string& body, bool head) {
  char header[512];
  const int n = std::snprintf(header, sizeof header,
                              "HTTP/1.1 %d %s\r\n"
                              "Content-Type: %s\r\n"
                              "Content-Length: %zu\r\n"
                              "Cache-Control: no-store\r\n"
                              "Connection: close\r\n"
                              "%s"
                              "\r\n",
                              status, reason_phrase(status), content_type, body.size(),
                              status == 405 ? "Allow: GET, HEAD\r\n" : "");
  mg_write(conn, header, static_cast<std::size_t>(n));
  if (!head && !body.empty()) mg_write(conn, body.data(), body.size());
  return status;
}

// civetweb wants IP literals; accept the common "localhost:PORT" too.
std::string civetweb_listen(const std::string& listen) {
  const std::string localhost = "localhost:";
  if (listen.rfind(localhost, 0) == 0) return "127.0.0.1:" + listen.substr(localhost.size());
  return listen;
}

}  // namespace

std::string json_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size() + 2);
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

bool ReadinessReport::ready() const {
  if (checks.empty()) return false;
  for (const auto& c : checks)
    if (!c.ok) return false;
  return true;
}

std::string ReadinessReport::to_json() const {
  std::string checks_json, failing_json;
  for (const auto& c : checks) {
    if (!checks_json.empty()) checks_json += ",";
    checks_json += "\"" + json_escape(c.name) + "\":{\"ok\":" + (c.ok ? "true" : "false") + ",\"detail\":\"" +
                   json_escape(c.detail) + "\"}";
    if (!c.ok) {
      if (!failing_json.empty()) failing_json += ",";
      failing_json += "\"" + json_escape(c.name) + "\"";
    }
  }
  const char* status = ready() ? "ready" : (checks.empty() ? "starting" : "not_ready");
  return std::string("{\"status\":\"") + status + "\",\"checks\":{" + checks_json + "},\"failing\":[" + failing_json +
         "]}\n";
}

bool http_endpoint_serves_ipv6() {
  constexpr unsigned kIpv6Feature = 8;
  return mg_check_feature(kIpv6Feature) != 0;
}

HttpEndpoint::HttpEndpoint(const std::string& listen, std::shared_ptr<prometheus::Collectable> collectable)
    : collectable_(std::move(collectable)) {
  if (listen.rfind('[', 0) == 0 && !http_endpoint_serves_ipv6())
    throw std::runtime_error("cannot listen on " + listen + ": this civetweb build has no IPv6; use an IPv4 address");
  mg_init_library(0);
  const std::string ports = civetweb_listen(listen);
  const char* options[] = {"listening_ports", ports.c_str(),
                           "num_threads", kWorkerThreadsText,
                           "request_timeout_ms", kRequestTimeoutMsText,
                           "connection_queue", kConnectionQueueText,
                           "listen_backlog", kListenBacklogText,
                           "enable_keep_alive", "no",
                           nullptr};
  mg_callbacks callbacks{};
  // civetweb prints its own errors to stderr unless told otherwise; they reach us through
  // mg_start2's error buffer instead.
  callbacks.log_message = [](const mg_connection*, const char*) { return 1; };
  mg_init_data init{};
  init.callbacks = &callbacks;
  init.user_data = this;
  init.configuration_options = options;
  char error_text[256] = {0};
  unsigned error_code = 0;
  mg_error_data error{};
  error.code = &error_code;
  error.text = error_text;
  error.text_buffer_size = sizeof error_text;
  ctx_ = mg_start2(&init, &error);
  if (ctx_ == nullptr) {
    mg_exit_library();
    throw std::runtime_error("cannot listen on " + listen + ": " +
                             (error_text[0] != '\0' ? std::string(error_text) : "civetweb failed to start") +
                             " (address in use, or not an IPv4 host:port?)");
  }
  for (const char* path : {"/metrics", "/healthz", "/readyz", "/"}) mg_set_request_handler(ctx_, path, &HttpEndpoint::handle, this);
  mg_server_port bound[4]{};
  if (mg_get_server_ports(ctx_, 4, bound) > 0) port_ = bound[0].port;
}

HttpEndpoint::~HttpEndpoint() {
  if (ctx_ != nullptr) mg_stop(ctx_);
  mg_exit_library();
}

void HttpEndpoint::set_readiness(Readiness readiness) {
  std::lock_guard lock(readiness_mu_);
  readiness_ = std::move(readiness);
}

ReadinessReport HttpEndpoint::readiness() const {
  std::lock_guard lock(readiness_mu_);
  if (!readiness_) return {};
  return readiness_();
}

int HttpEndpoint::handle(mg_connection* conn, void* self) { return static_cast<HttpEndpoint*>(self)->serve(conn); }

int HttpEndpoint::serve(mg_connection* conn) {
  const mg_request_info* request = mg_get_request_info(conn);
  const std::string method = request->request_method != nullptr ? request->request_method : "";
  const std::string path = request->local_uri != nullptr ? request->local_uri : "";
  const bool head = method == "HEAD";
  const bool known = path == "/metrics" || path == "/healthz" || path == "/readyz";
  if (!known) return respond(conn, 404, kText, "not found; try /metrics, /healthz or /readyz\n", head);
  if (method != "GET" && !head) return respond(conn, 405, kText, "only GET and HEAD\n", false);
  try {
    if (path == "/healthz") return respond(conn, 200, kJson, "{\"status\":\"alive\"}\n", head);
    if (path == "/readyz") {
      const ReadinessReport report = readiness();
      return respond(conn, report.ready() ? 200 : 503, kJson, report.to_json(), head);
    }
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, collectable_->Collect());
    return respond(conn, 200, kPrometheusText, out.str(), head);
  } catch (const std::exception& e) {
    return respond(conn, 500, kText, std::string("internal error: ") + e.what() + "\n", head);
  }
}

}  // namespace pm

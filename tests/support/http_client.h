#pragma once
// A minimal HTTP/1.1 client for tests: one request to 127.0.0.1:port, the whole response read
// until the server closes. Blocking; 10 s timeouts on connect, send and each receive.
#include <string>

namespace pm::test {

struct HttpResponse {
  int status = 0;  // 0: nothing answered
  std::string headers;
  std::string body;
  std::string header(const std::string& name) const;  // "" when absent; case-insensitive name
};

HttpResponse http_request(int port, const std::string& method, const std::string& path);

}  // namespace pm::test

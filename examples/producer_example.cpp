// pm::client::ProducerClient in a few lines: send trades to pm-ingestd and wait until each one
// is durable (acked), or learn why it was refused. Usage: producer_example [SOCKET]
#include <iostream>
#include <string>
#include <vector>

#include "client/producer_client.h"

int main(int argc, char** argv) {
  pm::client::ProducerOptions options;
  options.socket_path = argc > 1 ? argv[1] : "/run/pm-ingestd/ingest.sock";
  pm::client::ProducerClient producer(options);

  std::vector<std::future<pm::client::LineOutcome>> acks;
  for (int i = 0; i < 3; ++i)
    acks.push_back(producer.send(R"({"type":"trade","condition_id":"0xabc","trade_id":"example-)" + std::to_string(i) +
                                 R"(","token_id":"tok","price":"0.95","size":10,"side":"buy","timestamp":1764400000})"));
  int failed = 0;
  for (auto& ack : acks) {
    const pm::client::LineOutcome outcome = ack.get();  // resolved: acked, rejected or given up
    if (outcome.status == pm::client::LineOutcome::Status::Rejected) {
      std::cerr << "refused, not stored: " << outcome.reason << " " << outcome.detail << "\n";
      ++failed;
    } else if (!outcome.acked()) {  // given up: it may or may not be stored; sending it again is safe
      std::cerr << "not acknowledged (" << outcome.reason << "): send it again later\n";
      ++failed;
    }
  }
  std::cout << acks.size() - failed << " trades durable\n";
  return failed == 0 ? 0 : 1;
}

#pragma once
// ParseMemoryBudget: bounds the JSON parser memory of all connections' large lines together. A
// parser holds about kParserBytesPerLineByte bytes for each byte of the line it parses
// (parser_buffers.h), so a thousand connections parsing megabyte lines at once held gigabytes. A
// line longer than kKeptParserCapacity (8 KiB) takes its share of one process-wide budget for its
// parse and waits while other connections' large lines hold it, in arrival order (a line needing a
// large share is not passed for ever by smaller ones); ordinary lines take nothing and never wait.
// Outside the budget: what a connection's parser keeps of its ordinary lines, at most ~120 KiB
// (kKeptParserCapacity x kParserBytesPerLineByte) per connection, freed once the connection is
// idle (connection_session.h). A share larger than the whole budget is capped at it (such a line
// parses alone). Any thread.
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace pm {

class ParseMemoryBudget {
 public:
  explicit ParseMemoryBudget(std::size_t bytes) : capacity_(bytes) {}

  // Holds a share until destroyed (the parse and the use of its result).
  class Lease {
   public:
    Lease(ParseMemoryBudget* budget, std::size_t bytes) : budget_(budget), bytes_(bytes) {}
    Lease(Lease&& other) noexcept : budget_(other.budget_), bytes_(other.bytes_) { other.budget_ = nullptr; }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (budget_ != nullptr) budget_->give_back(bytes_);
    }
    std::size_t bytes() const { return bytes_; }

   private:
    ParseMemoryBudget* budget_;
    std::size_t bytes_;
  };

  // The share for parsing a line of `line_bytes` (none below kKeptParserCapacity), waiting until
  // it is free.
  Lease take(std::size_t line_bytes);
  std::size_t in_use() const;
  std::size_t waiting() const;  // takers waiting for their share

  // The daemon's budget: 256 MiB, room for about 17 lines of 1 MiB parsed at once.
  static ParseMemoryBudget& process();

 private:
  void give_back(std::size_t bytes);

  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable freed_;
  std::size_t in_use_ = 0;        // guarded by mu_
  std::uint64_t next_ticket_ = 0;  // guarded by mu_: the next waiter's place
  std::uint64_t serving_ = 0;      // guarded by mu_: the place whose turn it is
};

}  // namespace pm

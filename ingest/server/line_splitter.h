#pragma once
// LineSplitter: turns a byte stream into numbered lines (1, 2, 3, ... per connection). A line
// longer than the limit is not buffered: its bytes are skipped up to the next newline and it is
// reported as too long, so one huge line costs no memory and never swallows the line after it.
// A trailing '\r' is dropped. One per connection; not thread-safe.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace pm {

class LineSplitter {
 public:
  explicit LineSplitter(std::size_t max_line_bytes) : max_(max_line_bytes) {}

  // Called once per complete line: (line number, text or empty, too_long). `text` is valid only
  // during the call.
  using LineFn = std::function<void(std::uint64_t, std::string_view, bool)>;

  void feed(std::string_view bytes, const LineFn& on_line);
  // End of stream: an unterminated last line counts as a line.
  void finish(const LineFn& on_line);

  std::uint64_t lines() const { return next_line_ - 1; }
  bool has_partial() const { return !partial_.empty() || skipping_; }
  bool skipping() const { return skipping_; }  // inside a line already longer than the limit
  // Bytes held for an unfinished line. A buffer a large line grew past kKeptPartialCapacity is
  // freed once that line is done (an idle connection would hold it); smaller ones are reused.
  std::size_t partial_capacity() const { return partial_.capacity(); }
  static constexpr std::size_t kKeptPartialCapacity = 64 * 1024;
  // Frees the buffer of unfinished lines when none is unfinished (the connection is idle); the
  // next split line allocates it again.
  void release_buffer() {
    if (partial_.empty()) std::string().swap(partial_);
  }

 private:
  void emit(std::string_view line, const LineFn& on_line);
  bool ends_in_cr(std::string_view piece) const;
  void drop_partial();
  std::size_t max_;
  std::string partial_;
  bool skipping_ = false;
  std::uint64_t next_line_ = 1;
};

}  // namespace pm

#include "ingest/server/line_splitter.h"

namespace pm {

void LineSplitter::emit(std::string_view line, const LineFn& on_line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  on_line(next_line_++, line, false);
}

// Whether the line so far ends in '\r' (which a following '\n' makes part of the terminator).
bool LineSplitter::ends_in_cr(std::string_view piece) const {
  return piece.empty() ? !partial_.empty() && partial_.back() == '\r' : piece.back() == '\r';
}

void LineSplitter::drop_partial() {
  if (partial_.capacity() > kKeptPartialCapacity) std::string().swap(partial_);
  else partial_.clear();
}

void LineSplitter::feed(std::string_view bytes, const LineFn& on_line) {
  while (!bytes.empty()) {
    const std::size_t nl = bytes.find('\n');
    const std::string_view piece = bytes.substr(0, nl);
    if (skipping_) {
      if (nl == std::string_view::npos) return;  // still inside the over-long line
      skipping_ = false;
      on_line(next_line_++, {}, true);
    } else if (partial_.size() + piece.size() > max_ + (ends_in_cr(piece) ? 1 : 0)) {  // "\r\n" ends a line like "\n"
      drop_partial();
      if (nl == std::string_view::npos) {
        skipping_ = true;
        return;
      }
      on_line(next_line_++, {}, true);
    } else if (nl == std::string_view::npos) {
      partial_.append(piece);
      return;
    } else if (partial_.empty()) {
      emit(piece, on_line);  // the common case: no copy
    } else {
      partial_.append(piece);
      emit(partial_, on_line);
      drop_partial();
    }
    bytes.remove_prefix(nl + 1);
  }
}

void LineSplitter::finish(const LineFn& on_line) {
  if (skipping_) {
    skipping_ = false;
    on_line(next_line_++, {}, true);
  } else if (!partial_.empty()) {
    emit(partial_, on_line);
    drop_partial();
  }
}

}  // namespace pm

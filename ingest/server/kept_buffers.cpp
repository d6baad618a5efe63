#include "ingest/server/kept_buffers.h"

#include <malloc.h>

namespace pm {

namespace {
constexpr std::size_t kGiveBackBytes = 1 << 20;
thread_local std::size_t released_bytes = 0;
}  // namespace

void note_released(std::size_t bytes) { released_bytes += bytes; }

void give_back_released_memory() {
  if (released_bytes < kGiveBackBytes) return;
  released_bytes = 0;
  ::malloc_trim(0);
}

}  // namespace pm

#pragma once
// What a connection's thread keeps between lines and chunks stays small while it sits idle (as
// ReleaseLargeBuffers does for the JSON parser, parser_buffers.h). The calling thread's buffers
// and counts, except give_back_pending_memory.
#include <cstddef>
#include <vector>

namespace pm {

// A connection's vectors kept between lines and chunks (array elements, events, encoded payloads):
// one array line of half a million elements grew them to tens of MiB, kept while the connection
// sat idle. Emptied, and freed when they grew past kKeptBufferElements.
inline constexpr std::size_t kKeptBufferElements = 4096;

// Counts `bytes` freed by a release on this thread.
void note_released(std::size_t bytes);

// Once this thread's releases add up to 1 MiB, hands the freed memory back to the system
// (malloc_trim, at most once every 10 s in the process): glibc keeps it in its arenas otherwise.
// Within those 10 s it is left pending for give_back_pending_memory().
void give_back_released_memory();

// Hands what this thread released back at the next hand-back, however little: for a connection
// gone idle, which frees its buffers once and then nothing for a while (its few hundred KiB would
// never add up to give_back_released_memory's 1 MiB).
void give_back_released_memory_now_idle();

// Hands back memory whose release came within 10 s of the last hand-back (connections that went
// idle after it never call give_back_released_memory again). Any thread; the daemon's main loop
// calls it once a second.
void give_back_pending_memory();

template <class T>
void clear_and_release_if_large(std::vector<T>& buffer) {
  if (buffer.capacity() > kKeptBufferElements) {
    note_released(buffer.capacity() * sizeof(T));
    std::vector<T>().swap(buffer);
  } else {
    buffer.clear();
  }
}

}  // namespace pm

#pragma once
// Names the calling thread as `top -H`, `ps -L`, perf and gdb show it (Linux keeps the first 15
// bytes). The daemon's threads carry names like pm-conn, pm-writer, pm-lane, so an operator can
// see which part of the daemon uses the CPU. Best effort: a failure is ignored.
#include <string>

namespace pm {

void name_this_thread(const std::string& name);

}  // namespace pm

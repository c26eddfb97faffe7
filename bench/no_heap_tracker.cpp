// Sanitizer builds: the sanitizer owns malloc, so `kiln bench` reports no peak memory.

#include "bench/heap_tracker.hpp"

namespace kiln::bench {

bool heap_tracking() { return false; }
std::int64_t heap_in_use() { return 0; }
std::int64_t heap_peak() { return 0; }
void reset_heap_peak() {}

}  // namespace kiln::bench

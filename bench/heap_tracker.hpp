#pragma once
// Peak heap memory for `kiln bench`, the same way for Kiln and libtorch: the kiln program replaces
// malloc and friends with thin wrappers over glibc's that count bytes in use (malloc_usable_size), so
// a peak covers every allocator in the process. Not in sanitizer builds (ASan owns malloc there).

#include <cstdint>

namespace kiln::bench {

/// Whether the counting allocator is linked in.
bool heap_tracking();
/// Bytes in use now, and the most since reset_heap_peak().
std::int64_t heap_in_use();
std::int64_t heap_peak();
void reset_heap_peak();

}  // namespace kiln::bench

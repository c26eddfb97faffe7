#pragma once
// What every fuzz target shares: the bounds it runs Kiln under, and how it reports a finding.
//
// A target feeds bytes to one of Kiln's readers and demands what Kiln promises of hostile input: a
// kiln::Error, or a correct result. Any other exception escapes to libFuzzer, which reports it as a
// crash (uncaught exception, abort) together with the sanitizers' findings; a broken promise about a
// result is reported by KILN_FUZZ_EXPECT, which aborts.

#include <cstdio>
#include <cstdlib>

#include "tensor/parallel.hpp"
#include "tensor/storage.hpp"

#define KILN_FUZZ_EXPECT(condition, message)                                                         \
  do {                                                                                              \
    if (!(condition)) {                                                                             \
      std::fprintf(stderr, "kiln fuzz: %s:%d: %s: %s\n", __FILE__, __LINE__, #condition, message); \
      std::abort();                                                                                 \
    }                                                                                               \
  } while (false)

namespace kiln::fuzz {

/// Live tensors are limited to 256 MiB (kiln::set_memory_limit): an input asking for more must be
/// refused with a kiln::Error, well inside libFuzzer's own 2 GiB limit, which would report a crash.
/// One thread: every input runs the same way, and quickly.
inline void bound_kiln() {
  static const bool once = [] {
    set_memory_limit(std::size_t{256} << 20);
    set_num_threads(1);
    return true;
  }();
  (void)once;
}

}  // namespace kiln::fuzz

#pragma once
// Kiln's one thread pool. Note [Own the threading]: two busy-waiting pools on two cores (OpenBLAS's
// and an OpenMP one, say) can run 8x slower than one thread, so Kiln keeps OpenBLAS single-threaded
// and splits work itself: large GEMMs (ops/gemm.cpp), the batch of a fused kernel's gate pass, the
// two directions of a bidirectional fused layer. A parallel_for inside another runs inline.
//
//   kiln::set_num_threads(2);
//   kiln::parallel_for(rows, 64, [&](std::int64_t begin, std::int64_t end) { ... });

#include <cstdint>
#include <functional>

namespace kiln {

/// Threads Kiln uses (the calling thread included); at least 1. Defaults to KILN_NUM_THREADS, else 1.
/// At most this many threads (set_num_threads, KILN_NUM_THREADS): more only slows a machine down.
inline constexpr int kMaxThreads = 256;

/// Sets the number of Kiln's threads, 1 to kMaxThreads (an error otherwise).
void set_num_threads(int n);
int num_threads();

/// Calls fn(begin, end) over disjoint chunks covering [0, n), each at least `grain` long (the last may
/// be shorter), on up to num_threads() threads, and returns when all are done. The split depends only
/// on n, grain and num_threads(), so results are reproducible for a given thread count. An exception
/// thrown by fn is rethrown here.
void parallel_for(std::int64_t n, std::int64_t grain, const std::function<void(std::int64_t, std::int64_t)>& fn);

/// True on a pool thread, or on the caller while it runs a parallel_for chunk.
bool in_parallel_region();

}  // namespace kiln

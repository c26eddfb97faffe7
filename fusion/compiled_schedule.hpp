#pragma once
// The compiled kernel's schedule (fusion/compiled_kernel.cpp, Note [Compiled schedule]): how its GEMMs
// run, its blocks of steps and its groups of rows, none of which depend on the thread count.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "kiln/packed_gemm.hpp"

namespace kiln::plugins::compiled {

// C += op(A) op(B). Products up to sdk::kSmallGemmMacs multiply-adds run on the SDK's packed kernel
// (gemm_small: BLAS's packing and dispatch are a large share of a product this small, as on a small
// batch's blocks of steps), larger ones through BLAS in fixed blocks of rows (kiln/host_helpers.hpp).
// Which way a product goes depends on its sizes alone, and neither way depends on the thread count.
// scratch: small_scratch() elements.
template <class T>
void gemm_add(const kiln_host* h, bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, const T* a, std::int64_t lda,
              const T* b, std::int64_t ldb, T* c, std::int64_t ldc, T* scratch) {
  if (m == 0 || n == 0 || k == 0) return;
  if (m * n * k <= sdk::kSmallGemmMacs)
    sdk::gemm_small<T>(h, ta, tb, m, n, k, a, lda, b, ldb, true, c, ldc, scratch);
  else
    sdk::gemm_fixed_blocks<T>(h, ta, tb, m, n, k, T(1), a, lda, b, ldb, T(1), c, ldc);
}

inline constexpr std::int64_t kBlock = 16;  // steps whose state-projection weight gradients share one GEMM

// Note [Compiled schedule]: a batch of 16 rows or more runs each step's program as fixed groups of
// rows, B / 8 of them up to 16 (group g: rows [g B / G, (g + 1) B / G)), shared out over however many
// threads there are, each thread a contiguous run of groups; backward sums each group's parameter
// gradients apart and adds them in group order. The groups depend on B alone, so the results are the
// same bits on any thread count, and up to 16 threads find work in every step. (Programs with late
// projections run their rows as one group.)
inline constexpr std::int64_t kMaxRowGroups = 16;
inline std::int64_t row_groups(std::int64_t B) { return B >= 16 ? std::min(kMaxRowGroups, B / 8) : 1; }
inline std::int64_t group_start(std::int64_t B, std::int64_t groups, std::int64_t g) { return g * B / groups; }

inline int fail(char* err, size_t n, const std::string& what) {
  if (n > 0) {
    const size_t len = std::min(n - 1, what.size());
    std::memcpy(err, what.data(), len);
    err[len] = '\0';
  }
  return 1;
}

}  // namespace kiln::plugins::compiled

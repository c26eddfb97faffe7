#pragma once
// Plugin SDK: C++ conveniences over what Kiln lends a kernel (kiln_host in kiln/plugin.h): typed GEMM,
// parallel_for with a lambda, and error messages. Header-only; any kernel may use it.

#include <algorithm>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <type_traits>

#include "kiln/plugin.h"

namespace kiln::sdk {

/// Writes a printf-style message into a plugin function's err buffer.
inline void write_message(char* out, std::size_t size, const char* format, ...) {
  if (out == nullptr || size == 0) return;
  va_list args;
  va_start(args, format);
  std::vsnprintf(out, size, format, args);
  va_end(args);
}

template <class T>
void gemm(const kiln_host* h, bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* a,
          std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c, std::int64_t ldc) {
  if constexpr (std::is_same_v<T, float>)
    h->sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else
    h->dgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/// Runs f(begin, end) over [0, n) on Kiln's threads.
template <class F>
void parallel_for(const kiln_host* h, std::int64_t n, std::int64_t grain, F&& f) {
  using Fn = std::remove_reference_t<F>;
  h->parallel_for(n, grain, [](void* ctx, std::int64_t b, std::int64_t e) { (*static_cast<Fn*>(ctx))(b, e); }, &f);
}

/// gemm() cut into fixed blocks of kGemmBlockRows rows of C, shared out over Kiln's threads. Kiln's own
/// GEMM splits C by the number of threads, and BLAS may round a block of rows differently in the last
/// bit from the same rows of a larger call (OpenBLAS picks small-matrix kernels by size); with blocks
/// that do not depend on the thread count, neither does the result. A C of one block of rows (a weight
/// gradient of a narrow layer, say) is cut into fixed blocks of columns instead (a quarter of n, at
/// least 64), so a second thread still has work. The blocks run inside a parallel region even when
/// there is one (a second, empty task), so Kiln's GEMM does not split them further.
inline constexpr std::int64_t kGemmBlockRows = 256;

/// The width of gemm_fixed_blocks' column blocks for a C of n columns and one block of rows.
inline std::int64_t gemm_block_cols(std::int64_t n) { return std::max<std::int64_t>(64, (n / 4 + 15) / 16 * 16); }

template <class T>
void gemm_fixed_blocks(const kiln_host* h, bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, T alpha,
                       const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c, std::int64_t ldc) {
  const std::int64_t blocks = (m + kGemmBlockRows - 1) / kGemmBlockRows;
  if (blocks == 1 && n > 64) {
    const std::int64_t cw = gemm_block_cols(n), col_blocks = (n + cw - 1) / cw;
    parallel_for(h, std::max<std::int64_t>(col_blocks, 2), 1, [&](std::int64_t j0, std::int64_t j1) {
      for (std::int64_t j = j0; j < std::min(j1, col_blocks); ++j) {
        const std::int64_t c0 = j * cw, cols = std::min(cw, n - c0);
        gemm<T>(h, ta, tb, m, cols, k, alpha, a, lda, tb ? b + c0 * ldb : b + c0, ldb, beta, c + c0, ldc);
      }
    });
    return;
  }
  parallel_for(h, std::max<std::int64_t>(blocks, 2), 1, [&](std::int64_t j0, std::int64_t j1) {
    for (std::int64_t j = j0; j < std::min(j1, blocks); ++j) {
      const std::int64_t r0 = j * kGemmBlockRows, rows = std::min(kGemmBlockRows, m - r0);
      gemm<T>(h, ta, tb, rows, n, k, alpha, ta ? a + r0 : a + r0 * lda, lda, b, ldb, beta, c + r0 * ldc, ldc);
    }
  });
}

}  // namespace kiln::sdk

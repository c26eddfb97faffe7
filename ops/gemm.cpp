#include "ops/gemm.hpp"

#include <algorithm>

#include <cblas.h>

#include "tensor/parallel.hpp"

namespace kiln::blas {
namespace {

// Note [Own the threading] (tensor/parallel.hpp): OpenBLAS runs single-threaded and a large GEMM is
// split here into row (or column) blocks of C, one per Kiln thread.
void openblas_single_threaded() {
  static const bool once = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)once;
}

constexpr std::int64_t kSplitMacs = std::int64_t(1) << 20;  // below ~10 us of work a split costs more than it saves

template <class T, class F>
void split(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, const T* a, std::int64_t lda, const T* b,
           std::int64_t ldb, T* c, std::int64_t ldc, F&& call) {
  openblas_single_threaded();
  const int threads = num_threads();
  if (threads <= 1 || in_parallel_region() || m * n * k < kSplitMacs || (m < 32 && n < 32)) {
    call(m, n, a, b, c);
    return;
  }
  const bool by_rows = m >= n;
  const std::int64_t dim = by_rows ? m : n;
  const std::int64_t per = ((dim + threads - 1) / threads + 15) / 16 * 16;
  parallel_for((dim + per - 1) / per, 1, [&](std::int64_t first, std::int64_t last) {
    for (std::int64_t blk = first; blk < last; ++blk) {
      const std::int64_t lo = blk * per, len = std::min(per, dim - lo);
      if (by_rows)
        call(len, n, ta ? a + lo : a + lo * lda, b, c + lo * ldc);
      else
        call(m, len, a, tb ? b + lo * ldb : b + lo, c + lo);
    }
  });
}

}  // namespace

template <>
void gemm<float>(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
                 std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // BLAS leaves C untouched when k == 0 only if beta == 1; do it ourselves.
    for (std::int64_t i = 0; i < m; ++i) std::for_each(c + i * ldc, c + i * ldc + n, [beta](float& v) { v = beta == 0 ? 0 : v * beta; });
    return;
  }
  split(ta, tb, m, n, k, a, lda, b, ldb, c, ldc, [&](std::int64_t mm, std::int64_t nn, const float* aa, const float* bb, float* cc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(mm),
                static_cast<int>(nn), static_cast<int>(k), alpha, aa, static_cast<int>(lda), bb, static_cast<int>(ldb), beta,
                cc, static_cast<int>(ldc));
  });
}

template <>
void gemm<double>(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha, const double* a,
                  std::int64_t lda, const double* b, std::int64_t ldb, double beta, double* c, std::int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (std::int64_t i = 0; i < m; ++i) std::for_each(c + i * ldc, c + i * ldc + n, [beta](double& v) { v = beta == 0 ? 0 : v * beta; });
    return;
  }
  split(ta, tb, m, n, k, a, lda, b, ldb, c, ldc, [&](std::int64_t mm, std::int64_t nn, const double* aa, const double* bb, double* cc) {
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(mm),
                static_cast<int>(nn), static_cast<int>(k), alpha, aa, static_cast<int>(lda), bb, static_cast<int>(ldb), beta,
                cc, static_cast<int>(ldc));
  });
}

const char* core_name() { return openblas_get_corename(); }

}  // namespace kiln::blas

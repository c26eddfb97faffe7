#pragma once
// Internal: row-major GEMM on raw buffers through OpenBLAS (float and double).
//   C[m, n] = alpha * op(A)[m, k] op(B)[k, n] + beta * C, op = transpose when the flag is set.
// Note [No xt::linalg::dot]: it returns wrong shapes when operands alias and is not batched, so
// matmul goes straight to cblas_?gemm with transpose flags (no materialised transposes).

#include <cstdint>

namespace kiln::blas {

template <class T>
void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* a,
          std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c, std::int64_t ldc);

/// The name of the kernel OpenBLAS picked (e.g. "Cooperlake", "Haswell"). Threads: kiln::set_num_threads
/// (tensor/parallel.hpp); OpenBLAS itself runs single-threaded.
const char* core_name();

}  // namespace kiln::blas

#pragma once
// Plugin SDK: a GEMM against a weight matrix packed once and then used at every time step.
//
// A recurrent step multiplies a small batch of rows (M = batch, 32-64) by the same W_hh again and again.
// BLAS repacks W_hh into its own panel layout on every call, and at these sizes that packing and the call
// overhead are a fifth of the work (oneDNN and MKL's cblas_sgemm_pack exist for the same reason). Here
// the B operand is seen as panels of NR columns, [K][NR] each, and a register-blocked kernel (MR rows x
// NR columns of C held in vector registers, one broadcast of A and NR/W loads of B per k) runs over
// them. op(B) = B^T is packed once per sequence; op(B) = B is read where it lies (each panel row is
// already contiguous), only its last, partial panel copied and zero-padded.
//
//   PackedB<float> pb(K, N, true, buffer);        // buffer: packed_elements<float>(K, N, true) floats
//   pb.pack(w_hh, ldw);                           // op(B) = W_hh^T: [K = H, N = G*H]
//   packed_gemm(host, M, a, lda, pb, /*accumulate=*/true, c, ldc);   // C (+)= A op(B)
//
// Every element of C is summed over k in the same order whatever the thread count, so results are
// bit-identical for 1 and 2 threads. Uses xsimd when it is available (header-only; the plugin's own
// compiler flags choose the instruction set) and plain loops otherwise.

#include <algorithm>
#include <cstddef>
#include <cstdint>

#if __has_include(<xsimd/xsimd.hpp>)
#include <xsimd/xsimd.hpp>
#define KILN_SDK_HAS_XSIMD 1
#else
#define KILN_SDK_HAS_XSIMD 0
#endif

#include "kiln/host_helpers.hpp"

namespace kiln::sdk {

namespace packed {

#if KILN_SDK_HAS_XSIMD
template <class T>
using Vec = xsimd::batch<T>;
template <class T>
inline constexpr std::int64_t kWidth = static_cast<std::int64_t>(Vec<T>::size);
#else
template <class T>
inline constexpr std::int64_t kWidth = 1;
#endif

inline constexpr std::int64_t kMR = 8;  // rows of C per kernel call
inline constexpr std::int64_t kNV = 3;  // vectors per row: 8 x 3 accumulators leave room for B and A
template <class T>
inline constexpr std::int64_t kNR = kNV * kWidth<T>;  // columns per panel

// C[0..rows, 0..cols) (+)= A[0..rows, 0..K) * panel, rows <= MR, cols <= NR.
template <class T, std::int64_t MR>
inline void kernel(std::int64_t K, const T* a, std::int64_t lda, const T* panel, std::int64_t ldp, T* c, std::int64_t ldc,
                   std::int64_t cols, bool accumulate) {
  constexpr std::int64_t NR = kNR<T>;
#if KILN_SDK_HAS_XSIMD
  using V = Vec<T>;
  constexpr std::int64_t W = kWidth<T>;
  V acc[MR][kNV];
  for (std::int64_t i = 0; i < MR; ++i)
    for (std::int64_t v = 0; v < kNV; ++v) acc[i][v] = V(T(0));
  for (std::int64_t k = 0; k < K; ++k) {
    V b[kNV];
    for (std::int64_t v = 0; v < kNV; ++v) b[v] = V::load_unaligned(panel + k * ldp + v * W);
    for (std::int64_t i = 0; i < MR; ++i) {
      const V av(a[i * lda + k]);
      for (std::int64_t v = 0; v < kNV; ++v) acc[i][v] = xsimd::fma(av, b[v], acc[i][v]);
    }
  }
  alignas(64) T row[NR];
  for (std::int64_t i = 0; i < MR; ++i) {
    T* ci = c + i * ldc;
    if (cols == NR) {
      for (std::int64_t v = 0; v < kNV; ++v) {
        const V r = accumulate ? acc[i][v] + V::load_unaligned(ci + v * W) : acc[i][v];
        r.store_unaligned(ci + v * W);
      }
    } else {
      for (std::int64_t v = 0; v < kNV; ++v) acc[i][v].store_aligned(row + v * W);
      for (std::int64_t j = 0; j < cols; ++j) ci[j] = accumulate ? ci[j] + row[j] : row[j];
    }
  }
#else
  T acc[MR][NR] = {};
  for (std::int64_t k = 0; k < K; ++k)
    for (std::int64_t i = 0; i < MR; ++i)
      for (std::int64_t j = 0; j < NR; ++j) acc[i][j] += a[i * lda + k] * panel[k * ldp + j];
  for (std::int64_t i = 0; i < MR; ++i)
    for (std::int64_t j = 0; j < cols; ++j) c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
#endif
}

template <class T, std::int64_t MR>
inline void tail(std::int64_t rows, std::int64_t K, const T* a, std::int64_t lda, const T* panel, std::int64_t ldp, T* c,
                 std::int64_t ldc, std::int64_t cols, bool accumulate) {
  if constexpr (MR > 0) {
    if (rows == MR)
      kernel<T, MR>(K, a, lda, panel, ldp, c, ldc, cols, accumulate);
    else
      tail<T, MR - 1>(rows, K, a, lda, panel, ldp, c, ldc, cols, accumulate);
  }
}

}  // namespace packed

/// Elements the buffer of a PackedB of op(B) [K, N] needs: every panel when trans, else the last
/// partial one only.
template <class T>
constexpr std::int64_t packed_elements(std::int64_t K, std::int64_t N, bool trans) {
  constexpr std::int64_t NR = packed::kNR<T>;
  return trans ? (N + NR - 1) / NR * NR * K : (N % NR != 0 ? NR * K : 0);
}

/// op(B) [K, N] as panels of NR columns, each [K][NR] with rows ldp apart.
template <class T>
struct PackedB {
  std::int64_t K = 0, N = 0;
  bool trans = true;
  T* data = nullptr;  // packed_elements<T>(K, N, trans), owned by the caller

  PackedB() = default;
  PackedB(std::int64_t k, std::int64_t n, bool transposed, T* buffer) : K(k), N(n), trans(transposed), data(buffer) {}

  std::int64_t panels() const { return (N + packed::kNR<T> - 1) / packed::kNR<T>; }
  const T* panel(std::int64_t p) const {
    return trans ? data + p * K * packed::kNR<T> : p < N / packed::kNR<T> ? b_ + p * packed::kNR<T> : data;
  }
  std::int64_t panel_stride(std::int64_t p) const { return trans || p == N / packed::kNR<T> ? packed::kNR<T> : ldb_; }

  /// Packs op(B): b is [N, ldb] read transposed when trans, else [K, ldb] (kept by pointer: it must
  /// outlive the products).
  void pack(const T* b, std::int64_t ldb) {
    constexpr std::int64_t NR = packed::kNR<T>;
    b_ = b, ldb_ = ldb;
    for (std::int64_t p = trans ? 0 : N / NR; p < panels(); ++p) {
      T* out = trans ? data + p * K * NR : data;
      const std::int64_t n0 = p * NR, cols = std::min(NR, N - n0);
      if (trans) {  // row n of b is column n of op(B): walk each source row once
        for (std::int64_t j = 0; j < NR; ++j)
          for (std::int64_t k = 0; k < K; ++k) out[k * NR + j] = j < cols ? b[(n0 + j) * ldb + k] : T(0);
      } else {
        for (std::int64_t k = 0; k < K; ++k)
          for (std::int64_t j = 0; j < NR; ++j) out[k * NR + j] = j < cols ? b[k * ldb + n0 + j] : T(0);
      }
    }
  }

 private:
  const T* b_ = nullptr;
  std::int64_t ldb_ = 0;
};

/// C[M, N] = A[M, K] op(B) (accumulate false) or C += A op(B) (accumulate true), on Kiln's threads
/// when the product is large enough to pay for the split.
template <class T>
void packed_gemm(const kiln_host* host, std::int64_t M, const T* a, std::int64_t lda, const PackedB<T>& b, bool accumulate,
                 T* c, std::int64_t ldc) {
  constexpr std::int64_t NR = packed::kNR<T>, MR = packed::kMR;
  const std::int64_t K = b.K, N = b.N;
  if (M == 0 || N == 0) return;
  auto run = [&](std::int64_t p0, std::int64_t p1) {
    for (std::int64_t p = p0; p < p1; ++p) {
      const T* panel = b.panel(p);
      const std::int64_t ldp = b.panel_stride(p), cols = std::min(NR, N - p * NR);
      T* cp = c + p * NR;
      std::int64_t m = 0;
      for (; m + MR <= M; m += MR) packed::kernel<T, MR>(K, a + m * lda, lda, panel, ldp, cp + m * ldc, ldc, cols, accumulate);
      if (m < M) packed::tail<T, MR - 1>(M - m, K, a + m * lda, lda, panel, ldp, cp + m * ldc, ldc, cols, accumulate);
    }
  };
  constexpr std::int64_t kSplitMacs = std::int64_t(1) << 20;
  if (M * N * K < kSplitMacs || b.panels() < 2)
    run(0, b.panels());
  else
    parallel_for(host, b.panels(), 1, run);
}

}  // namespace kiln::sdk

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

// C[0..rows, 0..cols) (+)= A[0..rows, 0..K) * panel: MR rows, NV vectors of columns (cols <= NV * W).
template <class T, std::int64_t MR, std::int64_t NV>
inline void kernel(std::int64_t K, const T* a, std::int64_t lda, const T* panel, std::int64_t ldp, T* c, std::int64_t ldc,
                   std::int64_t cols, bool accumulate) {
  constexpr std::int64_t W = kWidth<T>;
#if KILN_SDK_HAS_XSIMD
  using V = Vec<T>;
  V acc[MR][NV];
  for (std::int64_t i = 0; i < MR; ++i)
    for (std::int64_t v = 0; v < NV; ++v) acc[i][v] = V(T(0));
  for (std::int64_t k = 0; k < K; ++k) {
    V b[NV];
    for (std::int64_t v = 0; v < NV; ++v) b[v] = V::load_unaligned(panel + k * ldp + v * W);
    for (std::int64_t i = 0; i < MR; ++i) {
      const V av(a[i * lda + k]);
      for (std::int64_t v = 0; v < NV; ++v) acc[i][v] = xsimd::fma(av, b[v], acc[i][v]);
    }
  }
  alignas(64) T row[NV * W];
  for (std::int64_t i = 0; i < MR; ++i) {
    T* ci = c + i * ldc;
    if (cols == NV * W) {
      for (std::int64_t v = 0; v < NV; ++v) {
        const V r = accumulate ? acc[i][v] + V::load_unaligned(ci + v * W) : acc[i][v];
        r.store_unaligned(ci + v * W);
      }
    } else {
      for (std::int64_t v = 0; v < NV; ++v) acc[i][v].store_aligned(row + v * W);
      for (std::int64_t j = 0; j < cols; ++j) ci[j] = accumulate ? ci[j] + row[j] : row[j];
    }
  }
#else
  T acc[MR][NV * W] = {};
  for (std::int64_t k = 0; k < K; ++k)
    for (std::int64_t i = 0; i < MR; ++i)
      for (std::int64_t j = 0; j < NV * W; ++j) acc[i][j] += a[i * lda + k] * panel[k * ldp + j];
  for (std::int64_t i = 0; i < MR; ++i)
    for (std::int64_t j = 0; j < cols; ++j) c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
#endif
}

// kernel<T, MR, nv> for a run-time nv in [1, kNV].
template <class T, std::int64_t MR, std::int64_t NV = kNV>
inline void block(std::int64_t nv, std::int64_t K, const T* a, std::int64_t lda, const T* panel, std::int64_t ldp, T* c,
                  std::int64_t ldc, std::int64_t cols, bool accumulate) {
  if constexpr (NV > 0) {
    if (nv == NV)
      kernel<T, MR, NV>(K, a, lda, panel, ldp, c, ldc, cols, accumulate);
    else
      block<T, MR, NV - 1>(nv, K, a, lda, panel, ldp, c, ldc, cols, accumulate);
  }
}

// block<T, rows> for a run-time rows in [1, MR].
template <class T, std::int64_t MR>
inline void tail(std::int64_t rows, std::int64_t nv, std::int64_t K, const T* a, std::int64_t lda, const T* panel,
                 std::int64_t ldp, T* c, std::int64_t ldc, std::int64_t cols, bool accumulate) {
  if constexpr (MR > 0) {
    if (rows == MR)
      block<T, MR>(nv, K, a, lda, panel, ldp, c, ldc, cols, accumulate);
    else
      tail<T, MR - 1>(rows, nv, K, a, lda, panel, ldp, c, ldc, cols, accumulate);
  }
}

// Columns of the last, partial panel rounded up to whole vectors (0 when N fills its panels).
template <class T>
constexpr std::int64_t rest_width(std::int64_t N) {
  return (N % kNR<T> + kWidth<T> - 1) / kWidth<T> * kWidth<T>;
}

}  // namespace packed

/// Elements the buffer of a PackedB of op(B) [K, N] needs: every panel when trans, else the last
/// partial one only (exactly K * N when trans and N is a whole number of vectors).
template <class T>
constexpr std::int64_t packed_elements(std::int64_t K, std::int64_t N, bool trans) {
  const std::int64_t rest = packed::rest_width<T>(N) * K;
  return trans ? N / packed::kNR<T> * packed::kNR<T> * K + rest : rest;
}

/// op(B) [K, N] as panels of NR columns, each [K][NR] with rows panel_stride(p) apart; the last
/// panel may be narrower (vectors(p) < kNV).
template <class T>
struct PackedB {
  std::int64_t K = 0, N = 0;
  bool trans = true;
  T* data = nullptr;  // packed_elements<T>(K, N, trans), owned by the caller

  PackedB() = default;
  PackedB(std::int64_t k, std::int64_t n, bool transposed, T* buffer) : K(k), N(n), trans(transposed), data(buffer) {}

  std::int64_t full() const { return N / packed::kNR<T>; }
  std::int64_t panels() const { return (N + packed::kNR<T> - 1) / packed::kNR<T>; }
  const T* panel(std::int64_t p) const {
    constexpr std::int64_t NR = packed::kNR<T>;
    if (p < full()) return trans ? data + p * K * NR : b_ + p * NR;
    return trans ? data + full() * K * NR : data;
  }
  std::int64_t panel_stride(std::int64_t p) const {
    return p < full() ? (trans ? packed::kNR<T> : ldb_) : packed::rest_width<T>(N);
  }
  std::int64_t vectors(std::int64_t p) const {
    return p < full() ? packed::kNV : packed::rest_width<T>(N) / packed::kWidth<T>;
  }

  /// Packs op(B): b is [N, ldb] read transposed when trans, else [K, ldb] (kept by pointer: it must
  /// outlive the products).
  void pack(const T* b, std::int64_t ldb) {
    b_ = b, ldb_ = ldb;
    for (std::int64_t p = trans ? 0 : full(); p < panels(); ++p) {
      T* out = trans ? data + p * K * packed::kNR<T> : data;  // = panel(p), writable
      const std::int64_t n0 = p * packed::kNR<T>, cols = std::min(packed::kNR<T>, N - n0), ld = panel_stride(p);
      if (trans) {  // row n of b is column n of op(B): walk each source row once
        for (std::int64_t j = 0; j < ld; ++j)
          for (std::int64_t k = 0; k < K; ++k) out[k * ld + j] = j < cols ? b[(n0 + j) * ldb + k] : T(0);
      } else {
        for (std::int64_t k = 0; k < K; ++k)
          for (std::int64_t j = 0; j < ld; ++j) out[k * ld + j] = j < cols ? b[k * ldb + n0 + j] : T(0);
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
      const std::int64_t ldp = b.panel_stride(p), cols = std::min(NR, N - p * NR), nv = b.vectors(p);
      T* cp = c + p * NR;
      std::int64_t m = 0;
      for (; m + MR <= M; m += MR) packed::block<T, MR>(nv, K, a + m * lda, lda, panel, ldp, cp + m * ldc, ldc, cols, accumulate);
      if (m < M) packed::tail<T, MR - 1>(M - m, nv, K, a + m * lda, lda, panel, ldp, cp + m * ldc, ldc, cols, accumulate);
    }
  };
  constexpr std::int64_t kSplitMacs = std::int64_t(1) << 20;
  if (M * N * K < kSplitMacs || b.panels() < 2)
    run(0, b.panels());
  else
    parallel_for(host, b.panels(), 1, run);
}

}  // namespace kiln::sdk

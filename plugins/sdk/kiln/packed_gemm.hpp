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

#include "kiln/detail/has_xsimd.hpp"

#include "kiln/host_helpers.hpp"

#if defined(__clang__)
#define KILN_SDK_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define KILN_SDK_UNROLL _Pragma("GCC unroll 16")
#else
#define KILN_SDK_UNROLL
#endif

namespace kiln::sdk {

/// Products up to this many multiply-adds go to the packed kernel in gemm_small(); larger ones to BLAS.
inline constexpr std::int64_t kSmallGemmMacs = std::int64_t(1) << 25;

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
inline constexpr std::int64_t kNR = kNV * kWidth<T>;  // columns per full panel

// C[0..rows, 0..cols) (+)= A[0..rows, 0..K) * panel: MR rows, NV vectors of columns (cols <= NV * W).
// A's element (i, k) is a[i * ars + k * acs], so A may be read transposed (ars = 1).
template <class T, std::int64_t MR, std::int64_t NV>
inline void kernel(std::int64_t K, const T* a, std::int64_t ars, std::int64_t acs, const T* panel, std::int64_t ldp, T* c,
                   std::int64_t ldc, std::int64_t cols, bool accumulate) {
  constexpr std::int64_t W = kWidth<T>;
#if KILN_SDK_HAS_XSIMD
  using V = Vec<T>;
  // The accumulators must live in registers: the loops over i and v are unrolled explicitly, since
  // -O2 (a plugin's RelWithDebInfo build, say) does not unroll them and keeps acc in memory (3x slower).
  V acc[MR][NV];
  KILN_SDK_UNROLL
  for (std::int64_t i = 0; i < MR; ++i)
    KILN_SDK_UNROLL
    for (std::int64_t v = 0; v < NV; ++v) acc[i][v] = V(T(0));
  for (std::int64_t k = 0; k < K; ++k) {
    V b[NV];
    KILN_SDK_UNROLL
    for (std::int64_t v = 0; v < NV; ++v) b[v] = V::load_unaligned(panel + k * ldp + v * W);
    const T* ak = a + k * acs;
    KILN_SDK_UNROLL
    for (std::int64_t i = 0; i < MR; ++i) {
      const V av(ak[i * ars]);
      KILN_SDK_UNROLL
      for (std::int64_t v = 0; v < NV; ++v) acc[i][v] = xsimd::fma(av, b[v], acc[i][v]);
    }
  }
  alignas(64) T row[NV * W];
  for (std::int64_t i = 0; i < MR; ++i) {
    T* ci = c + i * ldc;
    if (cols == NV * W) {
      KILN_SDK_UNROLL
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
      for (std::int64_t j = 0; j < NV * W; ++j) acc[i][j] += a[i * ars + k * acs] * panel[k * ldp + j];
  for (std::int64_t i = 0; i < MR; ++i)
    for (std::int64_t j = 0; j < cols; ++j) c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
#endif
}

// Everything a kernel call needs but its rows.
template <class T>
struct Tile {
  std::int64_t K;
  std::int64_t ars, acs;
  const T* panel;
  std::int64_t ldp;
  std::int64_t ldc, cols;
  bool accumulate;
};

// kernel<T, MR, nv> for a run-time nv in [1, kNV].
template <class T, std::int64_t MR, std::int64_t NV = kNV>
inline void block(std::int64_t nv, const Tile<T>& t, const T* a, T* c) {
  if constexpr (NV > 0) {
    if (nv == NV)
      kernel<T, MR, NV>(t.K, a, t.ars, t.acs, t.panel, t.ldp, c, t.ldc, t.cols, t.accumulate);
    else
      block<T, MR, NV - 1>(nv, t, a, c);
  }
}

// block<T, rows> for a run-time rows in [1, MR].
template <class T, std::int64_t MR>
inline void tail(std::int64_t rows, std::int64_t nv, const Tile<T>& t, const T* a, T* c) {
  if constexpr (MR > 0) {
    if (rows == MR)
      block<T, MR>(nv, t, a, c);
    else
      tail<T, MR - 1>(rows, nv, t, a, c);
  }
}

// How N columns split into panels: kNV vectors each, except that a last single vector is not left
// alone (a 1-vector kernel is bound by its broadcasts of A): ... 3, 3, 1 becomes ... 3, 2, 2.
template <class T>
struct Panels {
  std::int64_t N, vectors, wide, count;  // wide: panels of kNV vectors before the narrow ones
  explicit constexpr Panels(std::int64_t n) : N(n), vectors((n + kWidth<T> - 1) / kWidth<T>), wide(0), count(0) {
    const std::int64_t q = vectors / kNV, r = vectors % kNV;
    const bool two_twos = kNV == 3 && r == 1 && q > 0;
    wide = two_twos ? q - 1 : q;
    count = wide + (two_twos ? 2 : r > 0 ? 1 : 0);
  }
  constexpr std::int64_t nv(std::int64_t p) const {
    return p < wide ? kNV : (count - wide == 2 ? 2 : vectors - wide * kNV);
  }
  constexpr std::int64_t first(std::int64_t p) const {  // first column
    return p <= wide ? p * kNV * kWidth<T> : (wide * kNV + 2) * kWidth<T>;
  }
  constexpr std::int64_t cols(std::int64_t p) const { return std::min(nv(p) * kWidth<T>, N - first(p)); }
  // Whether panel p has fewer columns than its vectors (it is then copied and zero-padded).
  constexpr bool partial(std::int64_t p) const { return cols(p) < nv(p) * kWidth<T>; }
};

}  // namespace packed

/// Elements the buffer of a PackedB of op(B) [K, N] needs: every panel when trans (K * N when N is a
/// whole number of vectors), else the last panel only, and only when it is partial.
template <class T>
constexpr std::int64_t packed_elements(std::int64_t K, std::int64_t N, bool trans) {
  const packed::Panels<T> P(N);
  if (trans) return K * P.vectors * packed::kWidth<T>;
  return P.count > 0 && P.partial(P.count - 1) ? K * P.nv(P.count - 1) * packed::kWidth<T> : 0;
}

/// op(B) [K, N] as panels of up to kNV vectors of columns (packed::Panels), each [K][vectors * W] with
/// rows panel_stride(p) apart.
template <class T>
struct PackedB {
  std::int64_t K = 0, N = 0;
  bool trans = true;
  T* data = nullptr;  // packed_elements<T>(K, N, trans), owned by the caller

  PackedB() = default;
  PackedB(std::int64_t k, std::int64_t n, bool transposed, T* buffer) : K(k), N(n), trans(transposed), data(buffer), P_(n) {}

  std::int64_t panels() const { return P_.count; }
  std::int64_t first(std::int64_t p) const { return P_.first(p); }
  std::int64_t cols(std::int64_t p) const { return P_.cols(p); }
  std::int64_t vectors(std::int64_t p) const { return P_.nv(p); }
  const T* panel(std::int64_t p) const {
    if (trans) return data + K * P_.first(p);
    return P_.partial(p) ? data : b_ + P_.first(p);
  }
  std::int64_t panel_stride(std::int64_t p) const {
    return trans || P_.partial(p) ? P_.nv(p) * packed::kWidth<T> : ldb_;
  }

  /// Packs op(B): b is [N, ldb] read transposed when trans, else [K, ldb] (kept by pointer: it must
  /// outlive the products).
  void pack(const T* b, std::int64_t ldb) {
    b_ = b, ldb_ = ldb;
    for (std::int64_t p = 0; p < panels(); ++p) {
      if (!trans && !P_.partial(p)) continue;  // read where it lies
      T* out = const_cast<T*>(panel(p));       // inside data, which this object was given to fill
      const std::int64_t n0 = P_.first(p), cols = P_.cols(p), ld = panel_stride(p);
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
  packed::Panels<T> P_{0};
};

/// C[M, N] = op(A) op(B) (accumulate false) or C += op(A) op(B) (accumulate true), where op(A) is A
/// [M, K] with rows lda apart, or A^T when trans_a (A [K, M], rows lda apart). Runs on Kiln's threads,
/// split over panels and blocks of rows, when the product is large enough to pay for the split.
template <class T>
void packed_gemm(const kiln_host* host, std::int64_t M, const T* a, std::int64_t lda, const PackedB<T>& b, bool accumulate,
                 T* c, std::int64_t ldc, bool trans_a = false) {
  constexpr std::int64_t MR = packed::kMR;
  const std::int64_t K = b.K, N = b.N, ars = trans_a ? 1 : lda, acs = trans_a ? lda : 1;
  if (M == 0 || N == 0) return;
  // Tasks: (panel, block of rows); rows per block a multiple of MR, at most 64 blocks per panel.
  const std::int64_t blocks = std::min<std::int64_t>((M + MR - 1) / MR, 64);
  const std::int64_t rows = ((M + blocks - 1) / blocks + MR - 1) / MR * MR;
  const std::int64_t per_panel = (M + rows - 1) / rows;
  auto run = [&](std::int64_t t0, std::int64_t t1) {
    for (std::int64_t t = t0; t < t1; ++t) {
      const std::int64_t p = t / per_panel, m0 = t % per_panel * rows, m1 = std::min(M, m0 + rows);
      const packed::Tile<T> tile{K, ars, acs, b.panel(p), b.panel_stride(p), ldc, b.cols(p), accumulate};
      const std::int64_t nv = b.vectors(p);
      T* cp = c + b.first(p);
      std::int64_t m = m0;
      for (; m + MR <= m1; m += MR) packed::block<T, MR>(nv, tile, a + m * ars, cp + m * ldc);
      if (m < m1) packed::tail<T, MR - 1>(m1 - m, nv, tile, a + m * ars, cp + m * ldc);
    }
  };
  const std::int64_t tasks = b.panels() * per_panel;
  constexpr std::int64_t kSplitMacs = std::int64_t(1) << 20;
  if (M * N * K < kSplitMacs || tasks < 2)
    run(0, tasks);
  else
    parallel_for(host, tasks, 1, run);
}

/// Scratch elements gemm_small() needs for these sizes (0 when it will call BLAS).
template <class T>
constexpr std::int64_t gemm_small_scratch(std::int64_t M, std::int64_t N, std::int64_t K, bool trans_b) {
  return M * N * K <= kSmallGemmMacs ? packed_elements<T>(K, N, trans_b) : 0;
}

/// C = op(A) op(B), or C += op(A) op(B) when accumulate: below kSmallGemmMacs multiply-adds on the
/// packed kernel (BLAS packs and dispatches at a cost that is a large share of a product this small),
/// above it through the host's BLAS. scratch: gemm_small_scratch<T>(M, N, K, trans_b) elements.
template <class T>
void gemm_small(const kiln_host* host, bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, const T* a,
                std::int64_t lda, const T* b, std::int64_t ldb, bool accumulate, T* c, std::int64_t ldc, T* scratch) {
  if (M * N * K > kSmallGemmMacs) {
    gemm<T>(host, trans_a, trans_b, M, N, K, T(1), a, lda, b, ldb, T(accumulate ? 1 : 0), c, ldc);
    return;
  }
  PackedB<T> pb(K, N, trans_b, scratch);
  pb.pack(b, ldb);
  packed_gemm(host, M, a, lda, pb, accumulate, c, ldc, trans_a);
}

}  // namespace kiln::sdk

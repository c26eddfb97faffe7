#pragma once
// The plugin SDK's recurrent-kernel skeleton (kiln/recurrent_kernel.hpp), continued: the rows of a
// sequence as matrices — x's rows of a block of steps, gathered when strided, and h before each step
// read back from y (Note [h from y]).

#include <cstdint>
#include <cstring>

#include "kiln/host_helpers.hpp"
#include "kiln/plugin.h"
#include "kiln/detail/recurrent_layout.hpp"

namespace kiln::sdk::detail {

// x or dx [T, B, n] has its steps' rows back to back ([T * B, n] with rows n apart).
inline bool rows_dense(const kiln_tensor& t, std::int64_t B) {
  const std::int64_t n = t.shape[2];
  return (B <= 1 || t.strides[1] == n) && (t.shape[0] <= 1 || t.strides[0] == B * n);
}

// The rows of steps [t0, t1) of x [T, B, n] as one [(t1 - t0) * B, n] matrix: x's own when dense, else
// copied into gather (Note [Rows apart]: a group's rows of a larger batch).
template <class T>
const T* step_rows(const kiln_tensor& x, std::int64_t B, std::int64_t t0, std::int64_t t1, T* gather) {
  const std::int64_t n = x.shape[2];
  if (rows_dense(x, B)) return ptr<T>(x) + t0 * x.strides[0];
  for (std::int64_t t = t0; t < t1; ++t)
    for (std::int64_t b = 0; b < B; ++b)
      std::memcpy(gather + ((t - t0) * B + b) * n, ptr<T>(x) + t * x.strides[0] + b * x.strides[1], sizeof(T) * n);
  return gather;
}

// The inverse: rows [(t1 - t0) * B, n] into steps [t0, t1) of a strided dx.
template <class T>
void scatter_rows(const T* rows, const kiln_tensor& dx, std::int64_t B, std::int64_t t0, std::int64_t t1) {
  const std::int64_t n = dx.shape[2];
  for (std::int64_t t = t0; t < t1; ++t)
    for (std::int64_t b = 0; b < B; ++b)
      std::memcpy(ptr<T>(dx) + t * dx.strides[0] + b * dx.strides[1], rows + ((t - t0) * B + b) * n, sizeof(T) * n);
}

// Note [h from y]: backward needs h before each step, for the cell's pointwise backward (a GRU reads
// it) and as the operand of dW_hh. It is y at the step before it in the run (forward: t - 1, reverse:
// t + 1), except where a row's run starts: step 0 (reverse: T - 1) and, reversed with lengths, a row's
// last step (its state until then was h0, and y after it is zero). dW_hh takes one GEMM per stretch of
// steps whose rows of y lie evenly apart (all of a block, for Kiln's own layouts), one with h0 for the
// first step and a rank-1 update per row whose start y does not hold; or, given a gather buffer
// (Note [Rows apart]: a group's rows of y lie unevenly), one GEMM over the block's h rows copied there.
template <class T>
const T* h_before(const kiln_recurrent_problem& p, const T* h0, std::int64_t t, std::int64_t b) {
  const std::int64_t s = p.reverse ? t + 1 : t - 1;
  if (s < 0 || s >= p.steps || !live(p, s, b)) return h0 + b * p.hidden_size;
  return static_cast<const T*>(p.y->data) + s * p.y->strides[0] + b * p.y->strides[1];
}

// dw (+)= dg^T h over steps [t0, t1), h before each step (Note [h from y]): dg's rows in time order,
// ldg apart; dw is [M, H].
template <class T>
void add_recurrent_product(const kiln_host* host, const kiln_recurrent_problem& p, const T* h0, std::int64_t t0, std::int64_t t1,
                           std::int64_t M, const T* dg, std::int64_t ldg, bool accumulate, T* dw, T* gather) {
  const std::int64_t B = p.batch, H = p.hidden_size, ys0 = p.y->strides[0], ys1 = p.y->strides[1];
  T beta(accumulate ? 1 : 0);
  if (gather != nullptr) {
    for (std::int64_t t = t0; t < t1; ++t)
      for (std::int64_t b = 0; b < B; ++b) std::memcpy(gather + ((t - t0) * B + b) * H, h_before(p, h0, t, b), sizeof(T) * H);
    gemm<T>(host, true, false, M, H, (t1 - t0) * B, T(1), dg, ldg, gather, H, beta, dw, H);
    return;
  }
  const bool even = B == 1 || ys0 == B * ys1;  // consecutive steps' rows make one matrix, rows ld apart
  const std::int64_t ld = B == 1 ? ys0 : ys1;
  for (std::int64_t t = t0; t < t1; beta = T(1)) {
    const std::int64_t s = p.reverse ? t + 1 : t - 1;
    const T* a = dg + (t - t0) * B * ldg;
    if (s < 0 || s >= p.steps) {
      gemm<T>(host, true, false, M, H, B, T(1), a, ldg, h0, H, beta, dw, H);
      ++t;
      continue;
    }
    std::int64_t e = t + 1;  // steps [t, e) read rows of y from step s on
    while (even && e < t1 && (!p.reverse || e + 1 < p.steps)) ++e;
    gemm<T>(host, true, false, M, H, (e - t) * B, T(1), a, ldg, static_cast<const T*>(p.y->data) + s * ys0, ld, beta, dw, H);
    t = e;
  }
  if (p.reverse && p.lengths != nullptr)
    for (std::int64_t b = 0; b < B; ++b) {
      const std::int64_t t = p.lengths[b] - 1;
      if (t >= t0 && t < t1 && t + 1 < p.steps)
        gemm<T>(host, true, false, M, H, 1, T(1), dg + ((t - t0) * B + b) * ldg, ldg, h0 + b * H, H, T(1), dw, H);
    }
}

}  // namespace kiln::sdk::detail

#pragma once
// The plugin SDK's recurrent-kernel skeleton (kiln/recurrent_kernel.hpp): backward over a whole
// sequence, last step first, with the weight gradients by blocks of steps (Note [Weight gradients by
// blocks]) and h read back from y (Note [h from y]).

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kiln/host_helpers.hpp"
#include "kiln/packed_gemm.hpp"
#include "kiln/plugin.h"
#include "kiln/recurrent_cell.hpp"
#include "kiln/detail/recurrent_layout.hpp"
#include "kiln/detail/recurrent_rows.hpp"
#include "kiln/detail/recurrent_schedule.hpp"

namespace kiln::sdk::detail {

// out[k] (+)= sum over rows of a[r * ld + k], k < cols.
template <class T>
void column_sum(const T* a, std::int64_t rows, std::int64_t cols, std::int64_t ld, T* out, bool accumulate) {
  if (!accumulate) std::fill(out, out + cols, T(0));
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t k = 0; k < cols; ++k) out[k] += a[r * ld + k];
}

template <class Cell, class T>
void backward(const kiln_host* host, const kiln_recurrent_problem& p, const kiln_tensor* x, const kiln_tensor* states,
              const kiln_tensor* params, T* saved, const kiln_tensor* dy, const kiln_tensor* d_final, kiln_tensor* dx,
              kiln_tensor* d_states, kiln_tensor* d_params, T* work, T* gather = nullptr) {
  using Tr = Traits<Cell>;
  const Layout<Cell> L(p);
  const std::int64_t B = L.B, H = L.H, GH = L.G * H, BH = B * H, G1H = L.G1 * H, SH = L.split;
  const bool biases = Tr::gate_biases && p.has_bias;  // bias_ih and bias_hh
  const ExtraParams<Cell, T> extras(params);
  const T* w_hh = ptr<T>(params[1]);
  const T* h0 = ptr<T>(states[0]);
  // On the last backward each step's gate gradients overwrite that step's saved gates (no longer
  // needed), so no [T, B, G*H] gradient buffer is allocated: written there by the cell when it can
  // (Cell::gradients_in_place: the gates are in cache, just read), else made in dstep and copied.
  T* dgates = L.consume ? saved + L.gates : work + L.dgates;
  T* dstep = work + L.dstep;
  T* dhp = L.dhp_in_extra ? saved + L.extra : work + L.dhp;  // over the saved extras when the cell says so
  T* dcarry = work + L.dcarry;
  T* dprev = work + L.dprev;
  T* dnext = work + L.dnext;
  T* dm = work + L.dm;
  // Each row's sums of the extra parameters' gradients, added over its steps in step order whichever
  // thread runs the row; the rows are summed in row order at the end (Note [Extra parameters]).
  T* dextra = work + L.dextra;
  std::fill(dextra, dextra + B * L.P, T(0));
  PackedB<T> w1(L.K1, L.N1, false, work + L.pack1), w2(L.K2, L.N2, false, work + L.pack2);  // W_hh's rows, split as the gates
  w1.pack(w_hh, H);
  if (L.K2 > 0) w2.pack(w_hh + L.K1 * H, H);
  const T* dout = ptr<T>(*dy);
  const std::int64_t dys0 = dy->strides[0], dys1 = dy->strides[1];
  // dL/dh_t of every row and step, when Kiln records the gradient flow (problem->dh, version 5).
  T* dh_out = p.dh != nullptr ? ptr<T>(*p.dh) : nullptr;
  const std::int64_t dhs0 = dh_out != nullptr ? p.dh->strides[0] : 0, dhs1 = dh_out != nullptr ? p.dh->strides[1] : 0;
  for (int s = 0; s < L.S; ++s) std::memcpy(dcarry + s * BH, ptr<T>(d_final[s]), sizeof(T) * BH);
  // Row b's accumulators, one pointer per extra parameter.
  struct RowSums {
    T* p[kMaxExtraParams + 1] = {};
  };
  std::vector<RowSums> row_sums(static_cast<std::size_t>(Tr::extra_params > 0 ? B : 0));
  for (std::int64_t b = 0; b < static_cast<std::int64_t>(row_sums.size()); ++b)
    for (int k = 0; k < Tr::extra_params; ++k) row_sums[static_cast<std::size_t>(b)].p[k] = dextra + b * L.P + Tr::extra_offset(k) * H;
  // The weight gradients, block by block of steps (Note [Weight gradients by blocks]).
  const WeightBlocks W(L, p, host->num_threads(), side_by_side_rows(host, B, GH));
  T* scratch = work + L.scratch;
  // dX for block j's rows: independent rows, made by the thread that ran the block's steps.
  auto input_block = [&](std::int64_t j) {
    std::int64_t t0, t1;
    W.times(j, t0, t1);
    const std::int64_t rows = (t1 - t0) * B, r = t0 * B;
    if (dx->data == nullptr) return;
    const bool dense = rows_dense(*dx, B);
    T* out = dense ? ptr<T>(*dx) + t0 * dx->strides[0] : gather;  // a strided dx: made in gather, then scattered
    gemm_small<T>(host, false, false, rows, L.I, GH, dgates + r * GH, GH, ptr<T>(params[0]), L.I, false, out, L.I, scratch);
    if (!dense) scatter_rows(out, *dx, B, t0, t1);
  };
  // The weights' and biases' gradients in three parts (WeightParts: dW_hh, dW_ih, the biases), each
  // adding block j's products to the blocks' before it.
  auto weight_part = [&](int part, std::int64_t j) {
    std::int64_t t0, t1;
    W.times(j, t0, t1);
    const std::int64_t rows = (t1 - t0) * B, r = t0 * B;
    const bool acc = j > 0;
    const T* dg = dgates + r * GH;
    if (part == WeightParts::kInput && d_params[0].data != nullptr)
      gemm_small<T>(host, true, false, GH, L.I, rows, dg, GH, step_rows(*x, B, t0, t1, gather), L.I, acc, ptr<T>(d_params[0]), L.I,
                    scratch + L.scratch_each);
    if (part == WeightParts::kRecurrent && d_params[1].data != nullptr) {
      T* dw = ptr<T>(d_params[1]);
      if constexpr (Tr::split_gates > 0) {
        if (GH > SH) add_recurrent_product(host, p, h0, t0, t1, GH - SH, dg, GH, acc, dw, gather);
        add_recurrent_product(host, p, h0, t0, t1, SH, dhp + r * SH, SH, acc, dw + (GH - SH) * H, gather);
      } else {
        add_recurrent_product(host, p, h0, t0, t1, G1H, dg, GH, acc, dw, gather);
      }
      if (Tr::late_gates > 0)
        gemm<T>(host, true, false, GH - G1H, H, rows, T(1), dg + G1H, GH, saved + L.m + r * H, H, T(acc ? 1 : 0), dw + G1H * H, H);
    }
    if (part == WeightParts::kBias && biases) {
      T* db_ih = ptr<T>(d_params[2]);
      T* db_hh = ptr<T>(d_params[3]);
      if (db_ih != nullptr) column_sum(dg, rows, GH, GH, db_ih, acc);
      if (db_hh != nullptr) {
        if (SH > 0) {
          column_sum(dg, rows, GH - SH, GH, db_hh, acc);
          column_sum(dhp + r * SH, rows, SH, SH, db_hh + GH - SH, acc);
        } else if (db_ih == nullptr) {
          column_sum(dg, rows, GH, GH, db_hh, acc);
        }
      }
    }
  };
  auto weight_block = [&](std::int64_t j) {
    for (int q = 0; q < WeightParts::kCount; ++q) weight_part(q, j);
  };
  WeightParts parts(W.blocks);  // overlap only
  auto block_done = [&](std::int64_t j) {
    if (W.after) return;
    input_block(j);  // while the block's gate gradients are in cache
    if (W.overlap)
      parts.ready(j + 1);
    else
      weight_block(j);
  };
  // Every step, last to first, for batch rows [r0, r1) (Note [Rows side by side]).
  auto steps = [&](std::int64_t r0, std::int64_t r1) {
    const std::int64_t R = r1 - r0;
    const bool whole = r0 == 0 && r1 == B;
    T* dc = dcarry;  // the two state-gradient buffers trade places each step
    T* dp = dprev;
    for (std::int64_t k = L.T - 1; k >= 0; --k) {
      const std::int64_t t = p.reverse ? L.T - 1 - k : k;
      const bool staged = L.consume && !L.in_place;
      T* dgt = staged ? dstep : dgates + t * B * GH;
      T* dht = dhp + t * B * SH;
      const T* mt = saved + L.m + t * BH;
      auto row = [&](std::int64_t b) {
        Backward<T> r{H, saved + L.gates + (t * B + b) * GH, saved + L.extra + (t * B + b) * Tr::extras * H, {}, mt + b * H,
                      {}, {}, dgt + b * GH, dht + b * SH, dm + b * H, extras.p, nullptr,
                      work + L.bscratch + b * Tr::row_scratch * H};
        if (Tr::extra_params > 0) r.dparam = row_sums[static_cast<std::size_t>(b)].p;
        r.prev[0] = h_before(p, h0, t, b);  // Note [h from y]
        for (int s = 0; s < L.S; ++s) {
          if (s > 0) r.prev[s] = saved + L.prev + ((s - 1) * (L.T + 1) + prev_slot(p, t)) * BH + b * H;
          r.dnext[s] = s == 0 ? dnext + b * H : dc + s * BH + b * H;
          r.dprev[s] = dp + s * BH + b * H;
        }
        return r;
      };
      rows_of(host, r0, r1, GH, [&](std::int64_t b) {
        if (!live(p, t, b)) {
          std::fill(dgt + b * GH, dgt + (b + 1) * GH, T(0));
          if (SH > 0) std::fill(dht + b * SH, dht + (b + 1) * SH, T(0));
          for (int s = 0; s < L.S; ++s) std::memcpy(dp + s * BH + b * H, dc + s * BH + b * H, sizeof(T) * H);
          if (dh_out != nullptr) std::memcpy(dh_out + t * dhs0 + b * dhs1, dc + b * H, sizeof(T) * H);  // the held state's
          return;
        }
        const T* o = dout + t * dys0 + b * dys1;
        for (std::int64_t j = 0; j < H; ++j) dnext[b * H + j] = o[j] + dc[b * H + j];
        if (dh_out != nullptr) std::memcpy(dh_out + t * dhs0 + b * dhs1, dnext + b * H, sizeof(T) * H);
        if constexpr (Tr::late_gates > 0)
          Cell::backward_late(row(b));
        else
          Cell::backward(row(b));
      });
      if constexpr (Tr::late_gates > 0) {
        packed_gemm(host, R, dgt + r0 * GH + G1H, GH, w2, false, dm + r0 * H, H);
        rows_of(host, r0, r1, GH, [&](std::int64_t b) {
          if (live(p, t, b)) Cell::backward_early(row(b));
        });
      }
      // dh_prev += (d pre-activations of the recurrent side) W_hh; dead rows add zeros.
      if constexpr (Tr::split_gates > 0) {
        if (L.K1 > 0) packed_gemm(host, R, dgt + r0 * GH, GH, w1, true, dp + r0 * H, H);
        packed_gemm(host, R, dht + r0 * SH, SH, w2, true, dp + r0 * H, H);
      } else {
        packed_gemm(host, R, dgt + r0 * GH, GH, w1, true, dp + r0 * H, H);
      }
      if (staged) std::memcpy(dgates + (t * B + r0) * GH, dgt + r0 * GH, sizeof(T) * R * GH);
      std::swap(dc, dp);
      const std::int64_t q = L.T - 1 - k;  // steps done before this one
      if (whole && ((q + 1) % W.steps == 0 || k == 0)) block_done(q / W.steps);
    }
  };
  if (W.overlap) {
    // The steps on this thread, the blocks' weight gradients on the other as each block is done; this
    // thread joins in when its steps are done.
    parallel_for(host, 2, 1, [&](std::int64_t i0, std::int64_t i1) {
      for (std::int64_t i = i0; i < i1; ++i) {
        if (i == 0) {
          try {
            steps(0, B);
          } catch (...) {
            parts.fail();
            throw;
          }
        }
        parts.work(weight_part);
      }
    });
  } else {
    side_by_side(host, B, GH, steps);
    if (W.after)
      for (std::int64_t j = 0; j < W.blocks; ++j) input_block(j), weight_block(j);
  }
  if (L.T % 2 == 1) std::swap(dcarry, dprev);  // where the last step left the state gradients
  for (int s = 0; s < L.S; ++s)
    if (d_states[s].data != nullptr) std::memcpy(ptr<T>(d_states[s]), dcarry + s * BH, sizeof(T) * BH);
  if (biases && d_params[2].data != nullptr && d_params[3].data != nullptr && SH == 0)
    std::memcpy(ptr<T>(d_params[3]), ptr<T>(d_params[2]), sizeof(T) * GH);  // both biases enter the same pre-activation
  if (L.T == 0) {  // no block ran: the gradients of the weights are zero
    for (int q = 0; q < Tr::first_extra; ++q)
      if (d_params[q].data != nullptr) std::fill(ptr<T>(d_params[q]), ptr<T>(d_params[q]) + param_elements(d_params[q]), T(0));
  }
  // Note [Extra parameters]: the gradient of each of Cell::params is the sum of the rows' sums, in row order.
  for (int k = 0; k < Tr::extra_params; ++k) {
    T* d = ptr<T>(d_params[Tr::first_extra + k]);
    if (d != nullptr) column_sum(dextra + Tr::extra_offset(k) * H, B, Tr::param(k).vectors * H, L.P, d, false);
  }
}


}  // namespace kiln::sdk::detail

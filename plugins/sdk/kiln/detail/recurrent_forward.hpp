#pragma once
// The plugin SDK's recurrent-kernel skeleton (kiln/recurrent_kernel.hpp): forward over a whole
// sequence (Note [Fused recurrent skeleton]).

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>

#include "kiln/host_helpers.hpp"
#include "kiln/packed_gemm.hpp"
#include "kiln/plugin.h"
#include "kiln/recurrent_cell.hpp"
#include "kiln/detail/recurrent_layout.hpp"
#include "kiln/detail/recurrent_rows.hpp"
#include "kiln/detail/recurrent_schedule.hpp"

namespace kiln::sdk::detail {

template <class Cell, class T>
void forward(const kiln_host* host, const kiln_recurrent_problem& p, const kiln_tensor* x, const kiln_tensor* states,
             const kiln_tensor* params, kiln_tensor* y, kiln_tensor* final_states, T* saved, T* work, T* gather = nullptr) {
  using Tr = Traits<Cell>;
  const Layout<Cell> L(p);
  const std::int64_t B = L.B, H = L.H, GH = L.G * H, BH = B * H, G1H = L.G1 * H;
  const bool biases = Tr::gate_biases && p.has_bias;  // bias_ih and bias_hh
  const ExtraParams<Cell, T> extras(params);
  const T* w_ih = ptr<T>(params[0]);
  const T* w_hh = ptr<T>(params[1]);
  T* gates = saved + L.gates;
  // Input projections, biases first, one GEMM per block of steps (Note [Weight gradients by blocks]:
  // the same blocks, counted from the start of the run), each made just before its steps, so its rows
  // are in cache when the steps read them (one GEMM over all T * B rows, biases spread first, cost
  // twice as much); with two threads and the steps on one, the other makes them ahead of the steps.
  const WeightBlocks W(L, p, host->num_threads(), side_by_side_rows(host, B, GH));
  T* bias = work + L.bias;
  if (biases) {
    const T* bi = ptr<T>(params[2]);
    const T* bh = ptr<T>(params[3]);
    for (std::int64_t k = 0; k < GH; ++k) bias[k] = L.split > 0 ? bi[k] : bi[k] + bh[k];
  }
  auto project = [&](std::int64_t j) {
    std::int64_t t0, t1;
    W.times(W.blocks - 1 - j, t0, t1);
    T* g = gates + t0 * B * GH;
    if (biases)
      for (std::int64_t r = 0; r < (t1 - t0) * B; ++r) std::memcpy(g + r * GH, bias, sizeof(T) * GH);
    gemm<T>(host, false, true, (t1 - t0) * B, GH, L.I, T(1), step_rows(*x, B, t0, t1, gather), L.I, w_ih, L.I,
            T(biases ? 1 : 0), g, GH);
  };
  std::atomic<std::int64_t> projected{0};  // blocks made (overlap only)
  auto need_block = [&](std::int64_t j) {  // before the first step of block j (in the order the run goes)
    if (W.overlap) {
      wait_until([&] { return projected.load(std::memory_order_acquire) > j; });
    } else if (!W.after) {
      project(j);
    }
  };
  T* hp = work + L.hp;
  auto state = [&](int s, std::int64_t slot) {  // Note [State history]: h in two slots, the rest kept
    return s == 0 ? work + L.ring + (slot & 1) * BH : saved + L.prev + ((s - 1) * (L.T + 1) + slot) * BH;
  };
  const std::int64_t first = p.reverse ? L.T - 1 : 0, last = p.reverse ? 0 : L.T - 1;
  PackedB<T> w1(L.K1, L.N1, true, work + L.pack1), w2(L.K2, L.N2, true, work + L.pack2);  // W_hh^T, rows split as the gates
  w1.pack(w_hh, H);
  if (L.N2 > 0) w2.pack(w_hh + L.N1 * H, H);
  for (int s = 0; s < L.S; ++s) std::memcpy(state(s, prev_slot(p, first)), ptr<T>(states[s]), sizeof(T) * BH);
  T* out = ptr<T>(*y);  // rows through y's strides (KILN_KERNEL_STRIDED_SEQUENCES)
  const std::int64_t ys0 = y->strides[0], ys1 = y->strides[1];
  // Every step for batch rows [r0, r1) (Note [Rows side by side]).
  auto steps = [&](std::int64_t r0, std::int64_t r1) {
    const std::int64_t R = r1 - r0;
    for (std::int64_t k = 0; k < L.T; ++k) {
      const std::int64_t t = p.reverse ? L.T - 1 - k : k;
      if (r0 == 0 && r1 == B && (k == 0 || (L.T - k) % W.steps == 0))  // block k / steps begins
        need_block(k == 0 ? 0 : W.blocks - (L.T - k) / W.steps);
      T* gt = gates + t * B * GH;
      T* mt = saved + L.m + t * BH;
      T* carry = state(0, prev_slot(p, t));
      if constexpr (Tr::split_gates > 0) {
        for (std::int64_t b = r0; b < r1; ++b) {
          if (biases)
            std::memcpy(hp + b * GH, ptr<T>(params[3]), sizeof(T) * GH);
          else
            std::fill(hp + b * GH, hp + (b + 1) * GH, T(0));
        }
        packed_gemm(host, R, carry + r0 * H, H, w1, true, hp + r0 * GH, GH);
      } else {
        packed_gemm(host, R, carry + r0 * H, H, w1, true, gt + r0 * GH, GH);
      }
      auto row = [&](std::int64_t b) {
        Forward<T> f{H, gt + b * GH, hp + b * GH, {}, {}, saved + L.extra + (t * B + b) * Tr::extras * H, mt + b * H, extras.p,
                     work + L.fscratch + b * Tr::row_scratch * H};
        for (int s = 0; s < L.S; ++s) {
          f.prev[s] = state(s, prev_slot(p, t)) + b * H;
          f.next[s] = state(s, next_slot(p, t)) + b * H;
        }
        return f;
      };
      if constexpr (Tr::late_gates > 0) {
        rows_of(host, r0, r1, GH, [&](std::int64_t b) {
          if (live(p, t, b))
            Cell::forward_early(row(b));
          else
            std::fill(mt + b * H, mt + (b + 1) * H, T(0));
        });
        packed_gemm(host, R, mt + r0 * H, H, w2, true, gt + r0 * GH + G1H, GH);
      }
      rows_of(host, r0, r1, GH, [&](std::int64_t b) {
        T* o = out + t * ys0 + b * ys1;
        if (!live(p, t, b)) {  // the state carries through; the output is zero
          std::fill(o, o + H, T(0));
          for (int s = 0; s < L.S; ++s)
            std::memcpy(state(s, next_slot(p, t)) + b * H, state(s, prev_slot(p, t)) + b * H, sizeof(T) * H);
          return;
        }
        if constexpr (Tr::late_gates > 0)
          Cell::forward_late(row(b));
        else
          Cell::forward(row(b));
        std::memcpy(o, state(0, next_slot(p, t)) + b * H, sizeof(T) * H);
      });
    }
  };
  if (W.overlap) {
    parallel_for(host, 2, 1, [&](std::int64_t i0, std::int64_t i1) {
      for (std::int64_t i = i0; i < i1; ++i) {
        if (i == 1) {  // the projections, ahead of the steps
          for (std::int64_t j = 0; j < W.blocks; ++j) {
            project(j);
            projected.store(j + 1, std::memory_order_release);
          }
          continue;
        }
        if (i1 - i0 > 1) {  // both tasks on this thread: the projections first
          for (std::int64_t j = 0; j < W.blocks; ++j) project(j);
          projected.store(W.blocks, std::memory_order_release);
          ++i;
        }
        steps(0, B);
      }
    });
  } else {
    if (W.after)
      for (std::int64_t j = 0; j < W.blocks; ++j) project(j);
    side_by_side(host, B, GH, steps);
  }
  for (int s = 0; s < L.S; ++s) std::memcpy(ptr<T>(final_states[s]), state(s, next_slot(p, last)), sizeof(T) * BH);
}

}  // namespace kiln::sdk::detail

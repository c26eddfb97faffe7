#pragma once
// The plugin SDK's recurrent-kernel skeleton: describe a cell's pointwise math for one batch row and
// kiln::sdk::make_recurrent_kernel<Cell>() turns it into a kiln_recurrent_kernel (kiln/plugin.h) that
// runs a whole sequence. Header-only, C++17, and it needs nothing but kiln/plugin.h (and xsimd, when
// installed, for the packed GEMM), so a plugin built apart from Kiln uses it as is. Kiln's own LSTM,
// GRU and RNN kernels are written with it.
//
// Note [Fused recurrent skeleton]: forward projects the inputs in one GEMM per block of steps (biases
// folded in), then per step runs one recurrent GEMM (against W_hh packed once per sequence:
// kiln/packed_gemm.hpp) into the gates and the cell's pointwise pass over the batch rows. It keeps
// the gates the cell leaves in place (post-activations, say), every state besides h the sequence passes
// through (Note [State history]; h is y, which Kiln hands back to backward) and any extra vectors the
// cell asks for. Backward runs the cell's pointwise
// backward per step and one GEMM per step for the gradient of the previous h; dX, dW_ih, dW_hh and the
// bias gradients take one GEMM or column sum per block of steps (Note [Weight gradients by blocks]).
// A narrow batch of 16 rows or more runs as two groups of rows, each a problem of its own with its own
// memory, one per thread (Note [Rows apart], kiln/recurrent_groups.hpp); a wide one runs the steps of
// half the batch on each thread (Note [Rows side by side]); a small one splits into the steps and the
// blocks' GEMMs beside them. Sequences past their length keep their state and output zeros.
//
// A Cell provides (see plugins/builtin/*.cpp and examples/plugin/mgu_plugin.cpp):
//   static constexpr const char* name, *description;
//   static constexpr int gates;            G: the cell's weights are weight_ih [G*H, I], weight_hh [G*H, H]
//   static constexpr int states;           1 (h) or 2 (h, c)
//   static constexpr int extras;           H-sized vectors per row kept for backward besides the gates
//   static constexpr int late_gates;       the last late_gates gates read m (made by forward_early) instead
//                                          of h through weight_hh, as Cho et al.'s GRU reads r * h
//   static constexpr bool split_recurrent; the cell needs h W_hh^T + b_hh apart from the input's part,
//                                          and the last gate's recurrent gradient differs from its input
//                                          one (PyTorch's GRU: n = tanh(x_n + r * (W_hn h + b_hn)))
//   static constexpr bool gradients_in_place;  optional, default false: backward (and backward_late,
//                                          backward_early) may write dgates over gates — each reads an
//                                          element of gates only before writing that element of dgates
//   template <class T> static void forward(const Forward<T>&)        when late_gates == 0
//   template <class T> static void backward(const Backward<T>&)
//   or forward_early / forward_late and backward_late / backward_early when late_gates > 0.

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <type_traits>

#include "kiln/host_helpers.hpp"
#include "kiln/packed_gemm.hpp"
#include "kiln/plugin.h"
#include "kiln/recurrent_schedule.hpp"

namespace kiln::sdk {

/// One batch row of one step, forward. gates [G*H] arrives holding the pre-activations: x W_ih^T +
/// b_ih, plus h W_hh^T + b_hh unless split_recurrent (then in hp) — for late gates, plus m W^T + b
/// by forward_late. Leave in gates (and extra) whatever backward needs.
template <class T>
struct Forward {
  std::int64_t H;
  T* gates;
  const T* hp;        // [G*H]: h W_hh^T + b_hh (split_recurrent only)
  const T* prev[2];   // the state this step reads
  T* next[2];         // the state it writes
  T* extra;           // [extras * H]
  T* m;               // [H]: forward_early writes the late gates' recurrent input
};

/// One batch row of one step, backward. dnext: gradients of the new state (dh includes the output's).
/// backward (or backward_late) writes dprev — the gradient of the previous state through this row's
/// pointwise math (Kiln adds the recurrent GEMM's part of dh) — and dgates, the gradient of the
/// pre-activations (with split_recurrent: dgates for the input side, and dhp [H] for the last gate's
/// part of hp, the other gates' being the same as their dgates). backward_early gets
/// dm, finishes the early gates' dgates and adds to dprev. dgates is gates itself when the cell says
/// gradients_in_place.
template <class T>
struct Backward {
  std::int64_t H;
  const T* gates;
  const T* extra;
  const T* prev[2];
  const T* m;
  const T* dnext[2];
  T* dprev[2];
  T* dgates;
  T* dhp;             // [H] (split_recurrent only)
  const T* dm;
};

namespace detail {

// Cell::gradients_in_place, false when the cell does not say.
template <class Cell, class = void>
struct InPlace : std::false_type {};
template <class Cell>
struct InPlace<Cell, std::void_t<decltype(Cell::gradients_in_place)>> : std::bool_constant<Cell::gradients_in_place> {};

inline constexpr const char* kParamNames[] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};

struct Error : std::exception {
  char message[512];
};

[[noreturn]] inline void fail(const char* format, ...) {
  Error e;
  va_list args;
  va_start(args, format);
  std::vsnprintf(e.message, sizeof e.message, format, args);
  va_end(args);
  throw e;
}

inline void expect_shape(const kiln_tensor& t, const char* what, std::int64_t d0, std::int64_t d1 = -1, std::int64_t d2 = -1) {
  const std::int64_t want[3] = {d0, d1, d2};
  const int rank = d2 >= 0 ? 3 : d1 >= 0 ? 2 : 1;
  bool ok = t.data != nullptr && t.rank == rank;
  std::int64_t stride = 1;
  for (int i = rank - 1; ok && i >= 0; --i) {
    ok = t.shape[i] == want[i] && (t.shape[i] <= 1 || t.strides[i] == stride);
    stride *= t.shape[i];
  }
  if (!ok) fail("%s must be a contiguous [%lld%s%lld%s%lld] tensor", what, static_cast<long long>(d0), rank > 1 ? ", " : "",
                static_cast<long long>(rank > 1 ? d1 : 0), rank > 2 ? ", " : "", static_cast<long long>(rank > 2 ? d2 : 0));
}

template <class T>
T* ptr(const kiln_tensor& t) {
  return static_cast<T*>(t.data);
}

// Sizes of one problem, and where each buffer lives in the saved and work blocks (in elements).
template <class Cell>
struct Layout {
  std::int64_t T, B, I, H, G, S, G1, G2;
  std::int64_t gates, prev, extra, m, saved;                   // saved block
  std::int64_t hp, bias, ring, fwd_work;                       // forward work block
  std::int64_t dgates, dhp, dstep, dcarry, dprev, dnext, dm, bwd_work;  // backward work block
  // W_hh for the per-step GEMMs (packed copies at the end of either work block), in two parts: forward
  // packs W_hh^T for the gates read from h (pack1) and for the late gates (pack2); backward reads W_hh's
  // rows for dh where they lie (only a partial last panel is copied): the gates' (pack1) and the split
  // or late gates' (pack2). K1, N1 and K2, N2: the sizes of op(B) in those two GEMMs.
  std::int64_t pack1, pack2, K1, N1, K2, N2;
  std::int64_t scratch, scratch_each = 0;  // backward: gemm_small's scratch, two regions of scratch_each
  bool consume;  // the last backward: the gates' gradients go where the gates were saved
  bool in_place;  // ... and straight there (Cell::gradients_in_place), not through dstep

  explicit Layout(const kiln_recurrent_problem& p)
      : T(p.steps), B(p.batch), I(p.input_size), H(p.hidden_size), G(Cell::gates), S(Cell::states),
        G1(Cell::gates - Cell::late_gates), G2(Cell::late_gates), consume(p.phase == KILN_LAST_BACKWARD),
        in_place(consume && InPlace<Cell>::value) {
    const std::int64_t BH = B * H, TB = T * B;
    gates = 0;
    prev = gates + TB * G * H;
    extra = prev + (S - 1) * (TB + B) * H;
    m = extra + TB * Cell::extras * H;
    saved = m + (G2 > 0 ? TB * H : 0);
    hp = 0;
    bias = hp + (Cell::split_recurrent ? B * G * H : 0);
    ring = bias + G * H;
    fwd_work = ring + 2 * BH;
    dgates = 0;
    dhp = dgates + (consume ? 0 : TB * G * H);
    dstep = dhp + (Cell::split_recurrent ? TB * H : 0);
    dcarry = dstep + (consume && !in_place ? B * G * H : 0);
    dprev = dcarry + S * BH;
    dnext = dprev + S * BH;
    dm = dnext + BH;
    bwd_work = dm + BH;
    const bool fwd = p.phase == KILN_FORWARD;
    const std::int64_t GH = G * H, first = Cell::split_recurrent ? (fwd ? GH : GH - H) : G1 * H;
    K1 = fwd ? H : first, N1 = fwd ? first : H;
    K2 = fwd ? H : GH - first, N2 = fwd ? GH - first : H;
    const bool f32 = p.dtype == KILN_FLOAT32;
    auto elements = [f32, fwd](std::int64_t k, std::int64_t n) {
      return k == 0 || n == 0 ? 0 : f32 ? packed_elements<float>(k, n, fwd) : packed_elements<double>(k, n, fwd);
    };
    pack1 = fwd ? fwd_work : bwd_work;
    pack2 = pack1 + elements(K1, N1);
    (fwd ? fwd_work : bwd_work) = pack2 + elements(K2, N2);
    scratch = bwd_work;
    if (!fwd) {  // gemm_small's for dX and dW_ih, for blocks of up to TB rows (Note [Weight gradients by blocks])
      auto small = [f32](std::int64_t m, std::int64_t n, std::int64_t k) {
        return f32 ? gemm_small_scratch<float>(m, n, k, false) : gemm_small_scratch<double>(m, n, k, false);
      };
      // dX's needs the most at the fewest rows (B); dW_ih's grows with the rows it still packs (rows * GH *
      // I within gemm_small's limit, whole steps). Two regions: they may be made on two threads at once.
      const std::int64_t packs = std::min(TB, kSmallGemmMacs / std::max<std::int64_t>(1, GH * I)) / std::max<std::int64_t>(1, B) * B;
      scratch_each = std::max(small(B, I, GH), packs > 0 ? small(GH, I, packs) : 0);
      bwd_work += 2 * scratch_each;
    }
  }
};

// Note [State history]: saved keeps every state but h the sequence passes through (c, for an LSTM),
// T + 1 slots of [B, H] per state tensor: the initial one, then each step's result. Step t reads slot
// prev_slot(t) and writes slot next_slot(t) (forward: t and t + 1; reverse: t + 1 and t), so no state is
// copied between steps. h needs no history of its own: each step's h is its row of y, which Kiln keeps
// and hands back to backward (KILN_KERNEL_BACKWARD_READS_Y). Forward runs h through two slots of its
// work block (slot parity); backward reads h before step t from y at the step before it in the run
// (Note [h from y]). For an LSTM layer that is a fifth of what forward keeps.
inline std::int64_t prev_slot(const kiln_recurrent_problem& p, std::int64_t t) { return t + (p.reverse ? 1 : 0); }
inline std::int64_t next_slot(const kiln_recurrent_problem& p, std::int64_t t) { return t + (p.reverse ? 0 : 1); }

inline bool live(const kiln_recurrent_problem& p, std::int64_t t, std::int64_t b) {
  return p.lengths == nullptr || t < p.lengths[b];
}

inline std::size_t element_size(const kiln_recurrent_problem& p) { return p.dtype == KILN_FLOAT64 ? 8 : 4; }

inline std::int64_t param_elements(const kiln_tensor& t) {
  std::int64_t n = 1;
  for (int i = 0; i < t.rank; ++i) n *= t.shape[i];
  return n;
}

// y or dy: [T, B, H] with any strides but a contiguous last dim (KILN_KERNEL_STRIDED_SEQUENCES).
inline void expect_sequence(const kiln_tensor& t, const char* what, const kiln_recurrent_problem& p) {
  if (t.data == nullptr || t.rank != 3 || t.shape[0] != p.steps || t.shape[1] != p.batch || t.shape[2] != p.hidden_size ||
      (p.hidden_size > 1 && t.strides[2] != 1))
    fail("%s must be [%lld, %lld, %lld] with a contiguous last dim", what, static_cast<long long>(p.steps),
         static_cast<long long>(p.batch), static_cast<long long>(p.hidden_size));
}

template <class Cell>
void check(const kiln_recurrent_problem& p, const kiln_tensor* x, const kiln_tensor* states, const kiln_tensor* params) {
  static_assert(Cell::states == 1 || Cell::states == 2, "a cell has 1 or 2 state tensors");
  static_assert(!(Cell::split_recurrent && Cell::late_gates > 0), "split_recurrent and late_gates don't combine");
  const std::int64_t GH = Cell::gates * p.hidden_size;
  expect_shape(*x, "x", p.steps, p.batch, p.input_size);
  for (int s = 0; s < Cell::states; ++s) expect_shape(states[s], s == 0 ? "h0" : "c0", p.batch, p.hidden_size);
  expect_shape(params[0], "weight_ih", GH, p.input_size);
  expect_shape(params[1], "weight_hh", GH, p.hidden_size);
  if (p.has_bias) {
    expect_shape(params[2], "bias_ih", GH);
    expect_shape(params[3], "bias_hh", GH);
  }
}

}  // namespace detail
}  // namespace kiln::sdk

#include "kiln/recurrent_rows.hpp"  // rows of a sequence, and h from y: needs ptr and live above

namespace kiln::sdk {
namespace detail {

template <class Cell, class T>
void forward(const kiln_host* host, const kiln_recurrent_problem& p, const kiln_tensor* x, const kiln_tensor* states,
             const kiln_tensor* params, kiln_tensor* y, kiln_tensor* final_states, T* saved, T* work, T* gather = nullptr) {
  const Layout<Cell> L(p);
  const std::int64_t B = L.B, H = L.H, GH = L.G * H, BH = B * H, G1H = L.G1 * H;
  const T* w_ih = ptr<T>(params[0]);
  const T* w_hh = ptr<T>(params[1]);
  T* gates = saved + L.gates;
  // Input projections, biases first, one GEMM per block of steps (Note [Weight gradients by blocks]:
  // the same blocks, counted from the start of the run), each made just before its steps, so its rows
  // are in cache when the steps read them (one GEMM over all T * B rows, biases spread first, cost
  // twice as much); with two threads and the steps on one, the other makes them ahead of the steps.
  const WeightBlocks W(L, p, host->num_threads(), side_by_side_rows(host, B, GH));
  T* bias = work + L.bias;
  if (p.has_bias) {
    const T* bi = ptr<T>(params[2]);
    const T* bh = ptr<T>(params[3]);
    for (std::int64_t k = 0; k < GH; ++k) bias[k] = Cell::split_recurrent ? bi[k] : bi[k] + bh[k];
  }
  auto project = [&](std::int64_t j) {
    std::int64_t t0, t1;
    W.times(W.blocks - 1 - j, t0, t1);
    T* g = gates + t0 * B * GH;
    if (p.has_bias)
      for (std::int64_t r = 0; r < (t1 - t0) * B; ++r) std::memcpy(g + r * GH, bias, sizeof(T) * GH);
    gemm<T>(host, false, true, (t1 - t0) * B, GH, L.I, T(1), step_rows(*x, B, t0, t1, gather), L.I, w_ih, L.I,
            T(p.has_bias ? 1 : 0), g, GH);
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
      if constexpr (Cell::split_recurrent) {
        for (std::int64_t b = r0; b < r1; ++b) {
          if (p.has_bias)
            std::memcpy(hp + b * GH, ptr<T>(params[3]), sizeof(T) * GH);
          else
            std::fill(hp + b * GH, hp + (b + 1) * GH, T(0));
        }
        packed_gemm(host, R, carry + r0 * H, H, w1, true, hp + r0 * GH, GH);
      } else {
        packed_gemm(host, R, carry + r0 * H, H, w1, true, gt + r0 * GH, GH);
      }
      auto row = [&](std::int64_t b) {
        Forward<T> f{H, gt + b * GH, hp + b * GH, {}, {}, saved + L.extra + (t * B + b) * Cell::extras * H, mt + b * H};
        for (int s = 0; s < L.S; ++s) {
          f.prev[s] = state(s, prev_slot(p, t)) + b * H;
          f.next[s] = state(s, next_slot(p, t)) + b * H;
        }
        return f;
      };
      if constexpr (Cell::late_gates > 0) {
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
        if constexpr (Cell::late_gates > 0)
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
  const Layout<Cell> L(p);
  const std::int64_t B = L.B, H = L.H, GH = L.G * H, BH = B * H, G1H = L.G1 * H;
  const T* w_hh = ptr<T>(params[1]);
  const T* h0 = ptr<T>(states[0]);
  // On the last backward each step's gate gradients overwrite that step's saved gates (no longer
  // needed), so no [T, B, G*H] gradient buffer is allocated: written there by the cell when it can
  // (Cell::gradients_in_place: the gates are in cache, just read), else made in dstep and copied.
  T* dgates = L.consume ? saved + L.gates : work + L.dgates;
  T* dstep = work + L.dstep;
  T* dhp = work + L.dhp;
  T* dcarry = work + L.dcarry;
  T* dprev = work + L.dprev;
  T* dnext = work + L.dnext;
  T* dm = work + L.dm;
  PackedB<T> w1(L.K1, L.N1, false, work + L.pack1), w2(L.K2, L.N2, false, work + L.pack2);  // W_hh's rows, split as the gates
  w1.pack(w_hh, H);
  if (L.K2 > 0) w2.pack(w_hh + L.K1 * H, H);
  const T* dout = ptr<T>(*dy);
  const std::int64_t dys0 = dy->strides[0], dys1 = dy->strides[1];
  for (int s = 0; s < L.S; ++s) std::memcpy(dcarry + s * BH, ptr<T>(d_final[s]), sizeof(T) * BH);
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
      if constexpr (Cell::split_recurrent) {
        add_recurrent_product(host, p, h0, t0, t1, GH - H, dg, GH, acc, dw, gather);
        add_recurrent_product(host, p, h0, t0, t1, H, dhp + r * H, H, acc, dw + (GH - H) * H, gather);
      } else {
        add_recurrent_product(host, p, h0, t0, t1, G1H, dg, GH, acc, dw, gather);
      }
      if (Cell::late_gates > 0)
        gemm<T>(host, true, false, GH - G1H, H, rows, T(1), dg + G1H, GH, saved + L.m + r * H, H, T(acc ? 1 : 0), dw + G1H * H, H);
    }
    if (part == WeightParts::kBias && p.has_bias) {
      T* db_ih = ptr<T>(d_params[2]);
      T* db_hh = ptr<T>(d_params[3]);
      if (db_ih != nullptr) column_sum(dg, rows, GH, GH, db_ih, acc);
      if (db_hh != nullptr) {
        if (Cell::split_recurrent) {
          column_sum(dg, rows, GH - H, GH, db_hh, acc);
          column_sum(dhp + r * H, rows, H, H, db_hh + GH - H, acc);
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
      T* dht = dhp + t * BH;
      const T* mt = saved + L.m + t * BH;
      auto row = [&](std::int64_t b) {
        Backward<T> r{H, saved + L.gates + (t * B + b) * GH, saved + L.extra + (t * B + b) * Cell::extras * H, {}, mt + b * H,
                      {}, {}, dgt + b * GH, dht + b * H, dm + b * H};
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
          if (Cell::split_recurrent) std::fill(dht + b * H, dht + (b + 1) * H, T(0));
          for (int s = 0; s < L.S; ++s) std::memcpy(dp + s * BH + b * H, dc + s * BH + b * H, sizeof(T) * H);
          return;
        }
        const T* o = dout + t * dys0 + b * dys1;
        for (std::int64_t j = 0; j < H; ++j) dnext[b * H + j] = o[j] + dc[b * H + j];
        if constexpr (Cell::late_gates > 0)
          Cell::backward_late(row(b));
        else
          Cell::backward(row(b));
      });
      if constexpr (Cell::late_gates > 0) {
        packed_gemm(host, R, dgt + r0 * GH + G1H, GH, w2, false, dm + r0 * H, H);
        rows_of(host, r0, r1, GH, [&](std::int64_t b) {
          if (live(p, t, b)) Cell::backward_early(row(b));
        });
      }
      // dh_prev += (d pre-activations of the recurrent side) W_hh; dead rows add zeros.
      if constexpr (Cell::split_recurrent) {
        packed_gemm(host, R, dgt + r0 * GH, GH, w1, true, dp + r0 * H, H);
        packed_gemm(host, R, dht + r0 * H, H, w2, true, dp + r0 * H, H);
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
  if (p.has_bias && d_params[2].data != nullptr && d_params[3].data != nullptr && !Cell::split_recurrent)
    std::memcpy(ptr<T>(d_params[3]), ptr<T>(d_params[2]), sizeof(T) * GH);  // both biases enter the same pre-activation
  if (L.T == 0) {  // no block ran: the gradients of the weights are zero
    for (int q = 0; q < 4; ++q)
      if (d_params[q].data != nullptr) std::fill(ptr<T>(d_params[q]), ptr<T>(d_params[q]) + param_elements(d_params[q]), T(0));
  }
}

}  // namespace detail
}  // namespace kiln::sdk

#include "kiln/recurrent_groups.hpp"  // Note [Rows apart]: needs forward and backward above

namespace kiln::sdk {
namespace detail {

// Runs f, turning an exception into a message and a nonzero return: nothing may unwind into Kiln.
template <class F>
int guarded(char* err, std::size_t err_size, F&& f) {
  try {
    f();
    return 0;
  } catch (const Error& e) {
    write_message(err, err_size, "%s", e.message);
  } catch (const std::exception& e) {
    write_message(err, err_size, "%s", e.what());
  } catch (...) {
    write_message(err, err_size, "unknown exception");
  }
  return 1;
}

template <class Cell>
struct Entry {
  static int supports(const kiln_recurrent_problem* p, char* why, std::size_t size) {
    if (p->dtype != KILN_FLOAT32 && p->dtype != KILN_FLOAT64) {
      write_message(why, size, "runs float32 and float64 only");
      return 1;
    }
    return 0;
  }
  static std::size_t saved_bytes(const kiln_recurrent_problem* p) {
    Group<Cell> g[2];
    std::int64_t saved, work;
    plan_groups<Cell>(*p, g, &saved, &work);
    return static_cast<std::size_t>(saved) * element_size(*p);
  }
  static std::size_t work_bytes(const kiln_recurrent_problem* p) {
    Group<Cell> g[2];
    std::int64_t saved, work;
    plan_groups<Cell>(*p, g, &saved, &work);
    return static_cast<std::size_t>(work) * element_size(*p);
  }
  template <class T>
  static void run_forward(const kiln_host* host, const kiln_recurrent_problem& p, const kiln_tensor* x, const kiln_tensor* states,
                          const kiln_tensor* params, kiln_tensor* y, kiln_tensor* final_states, void* saved, void* work) {
    if (row_groups(p, Cell::gates) > 1)
      forward_groups<Cell, T>(host, p, x, states, params, y, final_states, static_cast<T*>(saved), static_cast<T*>(work));
    else
      detail::forward<Cell, T>(host, p, x, states, params, y, final_states, static_cast<T*>(saved), static_cast<T*>(work));
  }
  template <class T>
  static void run_backward(const kiln_host* host, const kiln_recurrent_problem& p, const kiln_tensor* x, const kiln_tensor* states,
                           const kiln_tensor* params,
                           void* saved, const kiln_tensor* dy, const kiln_tensor* d_final, kiln_tensor* dx, kiln_tensor* d_states,
                           kiln_tensor* d_params, void* work) {
    if (row_groups(p, Cell::gates) > 1)
      backward_groups<Cell, T>(host, p, x, states, params, static_cast<T*>(saved), dy, d_final, dx, d_states, d_params,
                               static_cast<T*>(work));
    else
      detail::backward<Cell, T>(host, p, x, states, params, static_cast<T*>(saved), dy, d_final, dx, d_states, d_params,
                                static_cast<T*>(work));
  }
  static int forward(const kiln_host* host, const kiln_recurrent_problem* p, const kiln_tensor* x, const kiln_tensor* states,
                     const kiln_tensor* params, kiln_tensor* y, kiln_tensor* final_states, void* saved, void* work, char* err,
                     std::size_t err_size) {
    return guarded(err, err_size, [&] {
      check<Cell>(*p, x, states, params);
      expect_sequence(*y, "y", *p);
      if (p->dtype == KILN_FLOAT32)
        run_forward<float>(host, *p, x, states, params, y, final_states, saved, work);
      else
        run_forward<double>(host, *p, x, states, params, y, final_states, saved, work);
    });
  }
  static int backward(const kiln_host* host, const kiln_recurrent_problem* p, const kiln_tensor* x, const kiln_tensor* states,
                      const kiln_tensor* params, void* saved, const kiln_tensor* dy, const kiln_tensor* d_final,
                      kiln_tensor* dx, kiln_tensor* d_states, kiln_tensor* d_params, void* work, char* err, std::size_t err_size) {
    return guarded(err, err_size, [&] {
      check<Cell>(*p, x, states, params);
      expect_sequence(*dy, "dy", *p);
      if (p->y == nullptr)
        fail("%s: backward needs forward's y (problem->y): list kiln::sdk::kRecurrentKernelFlags in the plugin's kernel_flags",
             Cell::name);
      expect_sequence(*p->y, "y", *p);
      if (p->dtype == KILN_FLOAT32)
        run_backward<float>(host, *p, x, states, params, saved, dy, d_final, dx, d_states, d_params, work);
      else
        run_backward<double>(host, *p, x, states, params, saved, dy, d_final, dx, d_states, d_params, work);
    });
  }
};

}  // namespace detail

/// What a kernel made by make_recurrent_kernel can take and needs (kiln_plugin.kernel_flags): y and dy
/// by strides, and forward's y back in backward (Note [h from y]).
inline constexpr std::uint32_t kRecurrentKernelFlags = KILN_KERNEL_STRIDED_SEQUENCES | KILN_KERNEL_BACKWARD_READS_Y;

/// The kiln_recurrent_kernel for Cell: parameters weight_ih, weight_hh, bias_ih, bias_hh (PyTorch's),
/// any lengths, both directions, float32 and float64. List kRecurrentKernelFlags for it in the plugin's
/// kernel_flags.
template <class Cell>
constexpr kiln_recurrent_kernel make_recurrent_kernel() {
  using E = detail::Entry<Cell>;
  return kiln_recurrent_kernel{Cell::name,       Cell::description, Cell::states,  4,           detail::kParamNames,
                               &E::supports,     &E::saved_bytes,   &E::work_bytes, &E::forward, &E::backward};
}

}  // namespace kiln::sdk

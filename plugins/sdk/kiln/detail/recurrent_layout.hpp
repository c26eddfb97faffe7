#pragma once
// The plugin SDK's recurrent-kernel skeleton (kiln/recurrent_kernel.hpp): one problem's sizes, where
// each buffer lives in the saved and work blocks, the state slots of each step, and the checks of the
// arguments a kernel is called with.

#include <algorithm>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <type_traits>

#include "kiln/detail/recurrent_contract.hpp"
#include "kiln/packed_gemm.hpp"
#include "kiln/plugin.h"

namespace kiln::sdk::detail {

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
  std::int64_t hp, bias, ring, fscratch, fwd_work;             // forward work block
  std::int64_t dgates, dhp, dstep, dcarry, dprev, dnext, dm, dextra, bscratch, bwd_work;  // backward work block
  bool dhp_in_extra;  // the last backward writes dhp over the saved extras (Cell::recurrent_gradients_in_place)
  std::int64_t split, P;  // split gates' recurrent width (split_gates * H); extra parameters' elements per row
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
        G1(Cell::gates - Traits<Cell>::late_gates), G2(Traits<Cell>::late_gates), consume(p.phase == KILN_LAST_BACKWARD),
        in_place(consume && Traits<Cell>::in_place) {
    using Tr = Traits<Cell>;
    const std::int64_t BH = B * H, TB = T * B;
    split = Tr::split_gates * H;
    P = Tr::extra_vectors() * H;
    gates = 0;
    prev = gates + TB * G * H;
    extra = prev + (S - 1) * (TB + B) * H;
    m = extra + TB * Tr::extras * H;
    saved = m + (G2 > 0 ? TB * H : 0);
    hp = 0;
    bias = hp + (split > 0 ? B * G * H : 0);
    ring = bias + G * H;
    fscratch = ring + 2 * BH;
    fwd_work = fscratch + B * Tr::row_scratch * H;
    dgates = 0;
    dhp = dgates + (consume ? 0 : TB * G * H);
    dhp_in_extra = consume && Tr::recurrent_in_place;
    dstep = dhp + (dhp_in_extra ? 0 : TB * split);
    dcarry = dstep + (consume && !in_place ? B * G * H : 0);
    dprev = dcarry + S * BH;
    dnext = dprev + S * BH;
    dm = dnext + BH;
    dextra = dm + BH;  // each row's sums of the extra parameters' gradients
    bscratch = dextra + B * P;
    bwd_work = bscratch + B * Tr::row_scratch * H;
    const bool fwd = p.phase == KILN_FORWARD;
    const std::int64_t GH = G * H, first = split > 0 ? (fwd ? GH : GH - split) : G1 * H;
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
  using Tr = Traits<Cell>;
  const std::int64_t GH = Cell::gates * p.hidden_size;
  expect_shape(*x, "x", p.steps, p.batch, p.input_size);
  for (int s = 0; s < Cell::states; ++s) expect_shape(states[s], s == 0 ? "h0" : "c0", p.batch, p.hidden_size);
  expect_shape(params[0], "weight_ih", GH, p.input_size);
  expect_shape(params[1], "weight_hh", GH, p.hidden_size);
  if (Tr::gate_biases && p.has_bias) {
    expect_shape(params[2], "bias_ih", GH);
    expect_shape(params[3], "bias_hh", GH);
  }
  for (int k = 0; k < Tr::extra_params; ++k) {
    const Param& q = Tr::param(k);
    const kiln_tensor& t = params[Tr::first_extra + k];
    if (t.data == nullptr && std::char_traits<char>::compare(q.name, "bias", 4) == 0) continue;  // an absent bias
    if (q.stacked)
      expect_shape(t, q.name, q.vectors, p.hidden_size);
    else
      expect_shape(t, q.name, q.vectors * p.hidden_size);
  }
}

// Pointers to the extra parameters (Cell::params) among the kernel's parameters.
template <class Cell, class T>
struct ExtraParams {
  const T* p[kMaxExtraParams + 1] = {};
  explicit ExtraParams(const kiln_tensor* params) {
    for (int k = 0; k < Traits<Cell>::extra_params; ++k) p[k] = static_cast<const T*>(params[Traits<Cell>::first_extra + k].data);
  }
};

}  // namespace kiln::sdk::detail

#include "plugins/builtin/fused_lstm.hpp"

#include <cmath>
#include <cstring>

#include <xsimd/xsimd.hpp>

#include "autograd/tape.hpp"
#include "ops/gemm.hpp"
#include "ops/ops.hpp"
#include "tensor/dispatch.hpp"

namespace kiln::plugins {
namespace {

template <class T>
T sigmoid1(T v) {
  return T(1) / (T(1) + std::exp(-v));
}

// One step's gate pass for one row: g holds pre-activations [i | f | g | o] and becomes the
// post-activations; c = f c_prev + i g; tc = tanh(c); h = o tc.
template <class T>
void gate_row(T* g, const T* c_prev, T* c, T* tc, T* h, std::int64_t H) {
  using B = xsimd::batch<T>;
  constexpr std::int64_t W = static_cast<std::int64_t>(B::size);
  std::int64_t j = 0;
  for (; j + W <= H; j += W) {
    const B one(T(1));
    const B i = one / (one + xsimd::exp(-B::load_unaligned(g + j)));
    const B f = one / (one + xsimd::exp(-B::load_unaligned(g + H + j)));
    const B gg = xsimd::tanh(B::load_unaligned(g + 2 * H + j));
    const B o = one / (one + xsimd::exp(-B::load_unaligned(g + 3 * H + j)));
    const B cn = f * B::load_unaligned(c_prev + j) + i * gg;
    const B t = xsimd::tanh(cn);
    i.store_unaligned(g + j);
    f.store_unaligned(g + H + j);
    gg.store_unaligned(g + 2 * H + j);
    o.store_unaligned(g + 3 * H + j);
    cn.store_unaligned(c + j);
    t.store_unaligned(tc + j);
    (o * t).store_unaligned(h + j);
  }
  for (; j < H; ++j) {
    const T i = sigmoid1(g[j]), f = sigmoid1(g[H + j]), gg = std::tanh(g[2 * H + j]), o = sigmoid1(g[3 * H + j]);
    g[j] = i, g[H + j] = f, g[2 * H + j] = gg, g[3 * H + j] = o;
    c[j] = f * c_prev[j] + i * gg;
    tc[j] = std::tanh(c[j]);
    h[j] = o * tc[j];
  }
}

struct Saved {
  Tensor x, w_ih, w_hh;        // inputs backward reads
  Tensor gates;                // [T, B, 4H] post-activation
  Tensor h_prev, c_prev, tc;   // [T, B, H]: state each step read, and tanh of the new cell
  std::vector<std::int64_t> lengths;
  bool reverse;
  bool has_bias;
};

bool live(const std::vector<std::int64_t>& lengths, std::int64_t t, std::int64_t b) {
  return lengths.empty() || t < lengths[static_cast<std::size_t>(b)];
}

template <class T>
Tensor forward_kernel(Saved& s, const Tensor& h0, const Tensor& c0, const Tensor& b_ih, const Tensor& b_hh) {
  const std::int64_t steps = s.x.size(0), batch = s.x.size(1), in = s.x.size(2), H = s.w_hh.size(1), G = 4 * H;
  const std::int64_t state = batch * H;
  Tensor packed({steps * state + 2 * state}, dtype_of<T>());
  T* out = packed.data<T>();
  T* g = s.gates.data<T>();
  // All time steps' input projections in one GEMM, biases first.
  if (s.has_bias) {
    const T* bi = b_ih.data<T>();
    const T* bh = b_hh.data<T>();
    for (std::int64_t r = 0; r < steps * batch; ++r)
      for (std::int64_t k = 0; k < G; ++k) g[r * G + k] = bi[k] + bh[k];
  }
  blas::gemm<T>(false, true, steps * batch, G, in, T(1), s.x.data<T>(), in, s.w_ih.data<T>(), in, T(s.has_bias ? 1 : 0), g, G);
  std::vector<T> h(h0.data<T>(), h0.data<T>() + state), c(c0.data<T>(), c0.data<T>() + state), hn(state), cn(state);
  for (std::int64_t k = 0; k < steps; ++k) {
    const std::int64_t t = s.reverse ? steps - 1 - k : k;
    T* gt = g + t * batch * G;
    std::memcpy(s.h_prev.data<T>() + t * state, h.data(), sizeof(T) * static_cast<std::size_t>(state));
    std::memcpy(s.c_prev.data<T>() + t * state, c.data(), sizeof(T) * static_cast<std::size_t>(state));
    blas::gemm<T>(false, true, batch, G, H, T(1), h.data(), H, s.w_hh.data<T>(), H, T(1), gt, G);
    T* tc = s.tc.data<T>() + t * state;
    for (std::int64_t b = 0; b < batch; ++b) {
      gate_row(gt + b * G, c.data() + b * H, cn.data() + b * H, tc + b * H, hn.data() + b * H, H);
      T* o = out + t * state + b * H;
      if (live(s.lengths, t, b)) {
        std::memcpy(o, hn.data() + b * H, sizeof(T) * static_cast<std::size_t>(H));
        std::memcpy(h.data() + b * H, hn.data() + b * H, sizeof(T) * static_cast<std::size_t>(H));
        std::memcpy(c.data() + b * H, cn.data() + b * H, sizeof(T) * static_cast<std::size_t>(H));
      } else {
        std::memset(o, 0, sizeof(T) * static_cast<std::size_t>(H));
      }
    }
  }
  std::memcpy(out + steps * state, h.data(), sizeof(T) * static_cast<std::size_t>(state));
  std::memcpy(out + steps * state + state, c.data(), sizeof(T) * static_cast<std::size_t>(state));
  return packed;
}

// Gradients: inputs are x, h0, c0, w_ih, w_hh[, b_ih, b_hh].
template <class T>
void backward_kernel(const Saved& s, const Tensor& dy, Grads& grads) {
  const std::int64_t steps = s.x.size(0), batch = s.x.size(1), in = s.x.size(2), H = s.w_hh.size(1), G = 4 * H;
  const std::int64_t state = batch * H;
  const T* dout = dy.data<T>();
  Tensor dgates({steps * batch, G}, dtype_of<T>());
  T* dg = dgates.data<T>();
  std::vector<T> dh(dout + steps * state, dout + steps * state + state);
  std::vector<T> dc(dout + steps * state + state, dout + steps * state + 2 * state);
  std::vector<T> dh_prev(state);
  const T* gates = s.gates.data<T>();
  for (std::int64_t k = steps - 1; k >= 0; --k) {
    const std::int64_t t = s.reverse ? steps - 1 - k : k;
    for (std::int64_t b = 0; b < batch; ++b) {
      T* d = dg + (t * batch + b) * G;
      if (!live(s.lengths, t, b)) {
        std::memset(d, 0, sizeof(T) * static_cast<std::size_t>(G));
        continue;
      }
      const T* gt = gates + (t * batch + b) * G;
      const T* tc = s.tc.data<T>() + t * state + b * H;
      const T* cp = s.c_prev.data<T>() + t * state + b * H;
      const T* o_dout = dout + t * state + b * H;
      T* dhb = dh.data() + b * H;
      T* dcb = dc.data() + b * H;
      for (std::int64_t j = 0; j < H; ++j) {
        const T i = gt[j], f = gt[H + j], g = gt[2 * H + j], o = gt[3 * H + j];
        const T dht = o_dout[j] + dhb[j];
        const T dct = dcb[j] + dht * o * (T(1) - tc[j] * tc[j]);
        d[j] = dct * g * i * (T(1) - i);
        d[H + j] = dct * cp[j] * f * (T(1) - f);
        d[2 * H + j] = dct * i * (T(1) - g * g);
        d[3 * H + j] = dht * tc[j] * o * (T(1) - o);
        dcb[j] = dct * f;
      }
    }
    blas::gemm<T>(false, false, batch, H, G, T(1), dg + t * batch * G, G, s.w_hh.data<T>(), H, T(0), dh_prev.data(), H);
    for (std::int64_t b = 0; b < batch; ++b)
      if (live(s.lengths, t, b)) std::memcpy(dh.data() + b * H, dh_prev.data() + b * H, sizeof(T) * static_cast<std::size_t>(H));
  }
  const std::int64_t rows = steps * batch;
  if (grads.needs(0)) {
    Tensor dx(s.x.shape(), dtype_of<T>());
    blas::gemm<T>(false, false, rows, in, G, T(1), dg, G, s.w_ih.data<T>(), in, T(0), dx.data<T>(), in);
    grads.add(0, dx);
  }
  const Shape hs{batch, H};
  if (grads.needs(1)) grads.add(1, from_data(std::vector<T>(dh.begin(), dh.end()), hs));
  if (grads.needs(2)) grads.add(2, from_data(std::vector<T>(dc.begin(), dc.end()), hs));
  if (grads.needs(3)) {
    Tensor dw(s.w_ih.shape(), dtype_of<T>());
    blas::gemm<T>(true, false, G, in, rows, T(1), dg, G, s.x.data<T>(), in, T(0), dw.data<T>(), in);
    grads.add(3, dw);
  }
  if (grads.needs(4)) {
    Tensor dw(s.w_hh.shape(), dtype_of<T>());
    blas::gemm<T>(true, false, G, H, rows, T(1), dg, G, s.h_prev.data<T>(), H, T(0), dw.data<T>(), H);
    grads.add(4, dw);
  }
  if (s.has_bias && (grads.needs(5) || grads.needs(6))) {
    Tensor db = zeros({G}, dtype_of<T>());
    T* p = db.data<T>();
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t k = 0; k < G; ++k) p[k] += dg[r * G + k];
    if (grads.needs(5)) grads.add(5, db.clone());
    if (grads.needs(6)) grads.add(6, db);
  }
}

}  // namespace

FusedLSTMResult fused_lstm(const Variable& x, const Variable& h0, const Variable& c0, const Variable& w_ih,
                           const Variable& w_hh, const Variable& b_ih, const Variable& b_hh,
                           const std::vector<std::int64_t>& lengths, bool reverse) {
  KILN_CHECK(x.defined() && x.dim() == 3, "fused_lstm: x must be [T, B, I], got {}", x.defined() ? x.shape() : Shape{});
  const std::int64_t steps = x.size(0), batch = x.size(1), in = x.size(2);
  KILN_CHECK(w_hh.defined() && w_hh.dim() == 2 && w_hh.size(0) == 4 * w_hh.size(1),
             "fused_lstm: weight_hh must be [4H, H], got {}", w_hh.defined() ? w_hh.shape() : Shape{});
  const std::int64_t H = w_hh.size(1);
  KILN_CHECK(w_ih.defined() && w_ih.shape() == (Shape{4 * H, in}), "fused_lstm: weight_ih must be [{}, {}], got {}",
             4 * H, in, w_ih.defined() ? w_ih.shape() : Shape{});
  for (const Variable* s : {&h0, &c0})
    KILN_CHECK(s->defined() && s->shape() == (Shape{batch, H}), "fused_lstm: states must be [{}, {}], got {}", batch, H,
               s->defined() ? s->shape() : Shape{});
  KILN_CHECK(b_ih.defined() == b_hh.defined(), "fused_lstm: give both biases or neither");
  KILN_CHECK(!b_ih.defined() || (b_ih.shape() == (Shape{4 * H}) && b_hh.shape() == (Shape{4 * H})),
             "fused_lstm: biases must be [{}]", 4 * H);
  KILN_CHECK(lengths.empty() || static_cast<std::int64_t>(lengths.size()) == batch,
             "fused_lstm: {} lengths for a batch of {}", lengths.size(), batch);
  for (auto l : lengths) KILN_CHECK(l >= 0 && l <= steps, "fused_lstm: length {} is outside [0, {}]", l, steps);
  std::vector<Variable> inputs{x, h0, c0, w_ih, w_hh};
  if (b_ih.defined()) inputs.insert(inputs.end(), {b_ih, b_hh});
  for (const auto& v : inputs)
    KILN_CHECK(v.dtype() == x.dtype() && is_floating(v.dtype()), "fused_lstm: every input must be float32 or float64 "
               "of one dtype; got {} and {}", x.dtype(), v.dtype());

  auto saved = std::make_shared<Saved>();
  saved->x = x.value();
  saved->w_ih = w_ih.value();
  saved->w_hh = w_hh.value();
  saved->gates = Tensor({steps, batch, 4 * H}, x.dtype());
  saved->h_prev = Tensor({steps, batch, H}, x.dtype());
  saved->c_prev = Tensor({steps, batch, H}, x.dtype());
  saved->tc = Tensor({steps, batch, H}, x.dtype());
  saved->lengths = lengths;
  saved->reverse = reverse;
  saved->has_bias = b_ih.defined();
  Tensor packed = dispatch_float(x.dtype(), "fused_lstm", [&](auto tag) {
    using T = decltype(tag);
    return forward_kernel<T>(*saved, h0.value(), c0.value(), b_ih.defined() ? b_ih.value() : Tensor(),
                             b_hh.defined() ? b_hh.value() : Tensor());
  });
  const Variable y = record("fused_lstm", packed, inputs, [saved](const Tensor& dy, Grads& g) {
    dispatch_float(dy.dtype(), "fused_lstm", [&](auto tag) { backward_kernel<decltype(tag)>(*saved, dy, g); });
  });
  const std::int64_t state = batch * H;
  return {reshape(narrow(y, 0, 0, steps * state), {steps, batch, H}), reshape(narrow(y, 0, steps * state, state), {batch, H}),
          reshape(narrow(y, 0, steps * state + state, state), {batch, H})};
}

}  // namespace kiln::plugins

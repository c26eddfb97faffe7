// Kiln's fused layer-normalised LSTM (Ba, Kiros & Hinton, 2016) on the SDK skeleton (Note [Fused
// recurrent skeleton]), as LayerNormLSTMCell with eps 1e-5:
//   gates = LN_ih(x W_ih^T) + LN_hh(h W_hh^T) + bias, split as i, f, g, o
//   c' = s(f) c + s(i) tanh(g);  h' = s(o) tanh(LN_c(c'))
// All four gates keep their recurrent part apart (split_gates = 4): the skeleton hands each row its
// input projection a (in gates) and its recurrent projection r (in hp) and takes back their gradients
// dA (dgates) and dR (dhp). The gains, shifts and bias are parameters beyond the gate weights
// (kiln::sdk::Param), their gradients summed per row. Saved per row: a and r as they came (the gates'
// slots and four extra vectors) and c (the skeleton's state history); backward recomputes the moments,
// activations and LN_c from them. The last backward writes dA over a and dR over r (gradients in place).

#include <cmath>

#include "kiln/lanes.hpp"
#include "kiln/recurrent_kernel.hpp"
#include "plugins/builtin/builtin.hpp"

namespace kiln::plugins::builtin {
namespace {

using namespace sdk::simd;

constexpr double kEps = 1e-5;

template <class T>
struct Moments {
  T mean, rstd;
};

// The mean and inverse deviation of x[0..n), in a fixed order (forward and backward agree bit for bit).
template <class T>
Moments<T> moments(const T* x, std::int64_t n) {
  const T mu = sum_lanes<T>(n, [&](auto v, std::int64_t j) { return load<decltype(v)>(x + j); }) / T(n);
  const T var = sum_lanes<T>(n, [&](auto v, std::int64_t j) {
                  using V = decltype(v);
                  const V d = load<V>(x + j) - V(mu);
                  return d * d;
                }) / T(n);
  return {mu, T(1) / std::sqrt(var + T(kEps))};
}

enum Param { kBias, kIhW, kIhB, kHhW, kHhB, kCW, kCB };

struct LayerNormLSTM {
  static constexpr const char* name = "layer_norm_lstm";
  static constexpr const char* description =
      "LayerNormLSTMCell (eps 1e-5): gates = LN(x W_ih^T) + LN(h W_hh^T) + bias; h' = o tanh(LN(c'))";
  static constexpr int gates = 4, states = 2;
  static constexpr int extras = 4;       // r, the recurrent projection, as it came
  static constexpr int split_gates = 4;  // every gate's recurrent part apart
  static constexpr bool gate_biases = false;
  static constexpr sdk::Param params[] = {{"bias", 4},         {"ln_ih_weight", 4}, {"ln_ih_bias", 4}, {"ln_hh_weight", 4},
                                          {"ln_hh_bias", 4},   {"ln_c_weight", 1},  {"ln_c_bias", 1}};
  static constexpr bool gradients_in_place = true;            // dA over a: each a_k read before dA_k is written
  static constexpr bool recurrent_gradients_in_place = true;  // dR over r, likewise
  static constexpr int row_scratch = 4;                       // backward: the gradient of the pre-activations

  // The pre-activation of gate element k from the raw projections and their moments.
  template <class V, class T>
  static V pre(const T* const* w, const T* a, const T* r, Moments<T> ma, Moments<T> mr, std::int64_t k) {
    const V ah = (load<V>(a + k) - V(ma.mean)) * V(ma.rstd), rh = (load<V>(r + k) - V(mr.mean)) * V(mr.rstd);
    V p = load<V>(w[kIhW] + k) * ah + load<V>(w[kIhB] + k) + load<V>(w[kHhW] + k) * rh + load<V>(w[kHhB] + k);
    if (w[kBias] != nullptr) p = p + load<V>(w[kBias] + k);
    return p;
  }

  template <class T>
  static void forward(const sdk::Forward<T>& f) {
    const std::int64_t H = f.H, G = 4 * H;
    const T* const* w = f.param;
    T* r = f.extra;
    lanes<T>(G, [&](auto v, std::int64_t k) { put(r + k, load<decltype(v)>(f.hp + k)); });
    const Moments<T> ma = moments(f.gates, G), mr = moments(r, G);
    lanes<T>(H, [&](auto v, std::int64_t j) {
      using V = decltype(v);
      const V i = sigmoid(pre<V>(w, f.gates, r, ma, mr, j)), fg = sigmoid(pre<V>(w, f.gates, r, ma, mr, H + j));
      const V g = tanh_of(pre<V>(w, f.gates, r, ma, mr, 2 * H + j)), o = sigmoid(pre<V>(w, f.gates, r, ma, mr, 3 * H + j));
      put(f.next[1] + j, fg * load<V>(f.prev[1] + j) + i * g);
      put(f.next[0] + j, o);  // o until LN_c's moments are known
    });
    const Moments<T> mc = moments(f.next[1], H);
    lanes<T>(H, [&](auto v, std::int64_t j) {
      using V = decltype(v);
      const V ch = (load<V>(f.next[1] + j) - V(mc.mean)) * V(mc.rstd);
      put(f.next[0] + j, load<V>(f.next[0] + j) * tanh_of(load<V>(w[kCW] + j) * ch + load<V>(w[kCB] + j)));
    });
  }

  // dprev[1] holds c' and dprev[0] dLN_c(c')/d(c-hat) until the last pass writes the state gradients;
  // scratch the pre-activations' gradient until dA and dR are written.
  template <class T>
  static void backward(const sdk::Backward<T>& b) {
    const std::int64_t H = b.H, G = 4 * H;
    const T* const* w = b.param;
    T* const* dw = b.dparam;
    const T *a = b.gates, *r = b.extra, *cp = b.prev[1], *dh = b.dnext[0];
    T *cn = b.dprev[1], *dch = b.dprev[0], *dpre = b.scratch;
    const Moments<T> ma = moments(a, G), mr = moments(r, G);
    lanes<T>(H, [&](auto v, std::int64_t j) {
      using V = decltype(v);
      const V i = sigmoid(pre<V>(w, a, r, ma, mr, j)), f = sigmoid(pre<V>(w, a, r, ma, mr, H + j));
      const V g = tanh_of(pre<V>(w, a, r, ma, mr, 2 * H + j));
      put(cn + j, f * load<V>(cp + j) + i * g);
    });
    const Moments<T> mc = moments(cn, H);
    // Through h' = o tanh(LN_c(c')): the gradient of c-hat, and the LN_c parameters'.
    lanes<T>(H, [&](auto v, std::int64_t j) {
      using V = decltype(v);
      const V o = sigmoid(pre<V>(w, a, r, ma, mr, 3 * H + j));
      const V ch = (load<V>(cn + j) - V(mc.mean)) * V(mc.rstd), tn = tanh_of(load<V>(w[kCW] + j) * ch + load<V>(w[kCB] + j));
      const V dn = load<V>(dh + j) * o * (V(T(1)) - tn * tn);
      put(dch + j, dn * load<V>(w[kCW] + j));
      put(dw[kCW] + j, load<V>(dw[kCW] + j) + dn * ch);
      put(dw[kCB] + j, load<V>(dw[kCB] + j) + dn);
    });
    const T m1 = sum_lanes<T>(H, [&](auto v, std::int64_t j) { return load<decltype(v)>(dch + j); }) / T(H);
    const T m2 = sum_lanes<T>(H, [&](auto v, std::int64_t j) {
                   using V = decltype(v);
                   return load<V>(dch + j) * (load<V>(cn + j) - V(mc.mean)) * V(mc.rstd);
                 }) / T(H);
    // Through c' and the gates: the pre-activations' gradient, the state's, and the shifts' and bias's.
    lanes<T>(H, [&](auto v, std::int64_t j) {
      using V = decltype(v);
      const V one(T(1));
      const V i = sigmoid(pre<V>(w, a, r, ma, mr, j)), f = sigmoid(pre<V>(w, a, r, ma, mr, H + j));
      const V g = tanh_of(pre<V>(w, a, r, ma, mr, 2 * H + j)), o = sigmoid(pre<V>(w, a, r, ma, mr, 3 * H + j));
      const V ch = (load<V>(cn + j) - V(mc.mean)) * V(mc.rstd), tn = tanh_of(load<V>(w[kCW] + j) * ch + load<V>(w[kCB] + j));
      const V dc = V(mc.rstd) * (load<V>(dch + j) - V(m1) - ch * V(m2)) + load<V>(b.dnext[1] + j);
      const V c = load<V>(cp + j);
      const V d[4] = {dc * g * i * (one - i), dc * c * f * (one - f), dc * i * (one - g * g), load<V>(dh + j) * tn * o * (one - o)};
      put(cn + j, dc * f);      // dprev[1]: the gradient of the previous c
      put(dch + j, V(T(0)));    // dprev[0]: the previous h's comes through the recurrent GEMM alone
      for (int q = 0; q < 4; ++q) {
        const std::int64_t k = q * H + j;
        put(dpre + k, d[q]);
        for (Param p : {kIhB, kHhB}) put(dw[p] + k, load<V>(dw[p] + k) + d[q]);
        if (w[kBias] != nullptr) put(dw[kBias] + k, load<V>(dw[kBias] + k) + d[q]);
        put(dw[kIhW] + k, load<V>(dw[kIhW] + k) + d[q] * (load<V>(a + k) - V(ma.mean)) * V(ma.rstd));
        put(dw[kHhW] + k, load<V>(dw[kHhW] + k) + d[q] * (load<V>(r + k) - V(mr.mean)) * V(mr.rstd));
      }
    });
    // Through the two layer norms: dA = rstd (d a-hat - mean(d a-hat) - a-hat mean(d a-hat a-hat)), dR alike.
    auto mean_of = [&](const T* gain, const T* x, Moments<T> m, bool times_hat) {
      return sum_lanes<T>(G, [&](auto v, std::int64_t k) {
               using V = decltype(v);
               const V dx = load<V>(dpre + k) * load<V>(gain + k);
               return times_hat ? dx * (load<V>(x + k) - V(m.mean)) * V(m.rstd) : dx;
             }) / T(G);
    };
    const T a1 = mean_of(w[kIhW], a, ma, false), a2 = mean_of(w[kIhW], a, ma, true);
    const T r1 = mean_of(w[kHhW], r, mr, false), r2 = mean_of(w[kHhW], r, mr, true);
    lanes<T>(G, [&](auto v, std::int64_t k) {
      using V = decltype(v);
      const V ah = (load<V>(a + k) - V(ma.mean)) * V(ma.rstd), rh = (load<V>(r + k) - V(mr.mean)) * V(mr.rstd);
      const V dp = load<V>(dpre + k);
      put(b.dgates + k, V(ma.rstd) * (dp * load<V>(w[kIhW] + k) - V(a1) - ah * V(a2)));
      put(b.dhp + k, V(mr.rstd) * (dp * load<V>(w[kHhW] + k) - V(r1) - rh * V(r2)));
    });
  }
};

}  // namespace

const kiln_recurrent_kernel& layer_norm_lstm_kernel() {
  static constexpr kiln_recurrent_kernel k = sdk::make_recurrent_kernel<LayerNormLSTM>();
  return k;
}

}  // namespace kiln::plugins::builtin

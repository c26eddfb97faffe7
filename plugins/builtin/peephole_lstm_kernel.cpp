// The fused peephole LSTM (Gers & Schmidhuber, 2000) on the SDK skeleton (Note [Fused recurrent
// skeleton]), as PeepholeLSTMCell: the gates also see the cell state through weight_peephole [3, H]
// (rows i, f, o), a parameter beyond the gate weights (kiln::sdk::Param):
//   i = s(a_i + p_i c), f = s(a_f + p_f c), g = tanh(a_g), c' = f c + i g, o = s(a_o + p_o c'), h' = o tanh(c')

#include "kiln/lanes.hpp"
#include "kiln/recurrent_kernel.hpp"
#include "plugins/builtin/builtin.hpp"

namespace kiln::plugins::builtin {
namespace {

using namespace sdk::simd;

struct PeepholeLSTM {
  static constexpr const char* name = "peephole_lstm";
  static constexpr const char* description =
      "PeepholeLSTMCell: i, f = s(. + p c), o = s(. + p_o c'); c' = f c + i g, h' = o tanh(c')";
  static constexpr int gates = 4, states = 2;
  static constexpr sdk::Param params[] = {{"weight_peephole", 3, /*stacked=*/true}};
  static constexpr bool gradients_in_place = true;  // backward reads a lane's gates, then writes their gradients

  // Keeps the activations i, f, g, o in gates.
  template <class T>
  static void forward(const sdk::Forward<T>& r) {
    const std::int64_t H = r.H;
    const T* p = r.param[0];
    lanes<T>(H, [&](auto v, std::int64_t j) {
      using V = decltype(v);
      const V c = load<V>(r.prev[1] + j);
      const V i = sigmoid(load<V>(r.gates + j) + load<V>(p + j) * c);
      const V f = sigmoid(load<V>(r.gates + H + j) + load<V>(p + H + j) * c);
      const V g = tanh_of(load<V>(r.gates + 2 * H + j));
      const V cn = f * c + i * g;
      const V o = sigmoid(load<V>(r.gates + 3 * H + j) + load<V>(p + 2 * H + j) * cn);
      put(r.gates + j, i), put(r.gates + H + j, f), put(r.gates + 2 * H + j, g), put(r.gates + 3 * H + j, o);
      put(r.next[0] + j, o * tanh_of(cn));
      put(r.next[1] + j, cn);
    });
  }

  template <class T>
  static void backward(const sdk::Backward<T>& r) {
    const std::int64_t H = r.H;
    const T* p = r.param[0];
    T* dp = r.dparam[0];
    lanes<T>(H, [&](auto v, std::int64_t j) {
      using V = decltype(v);
      const V one(T(1));
      const V i = load<V>(r.gates + j), f = load<V>(r.gates + H + j), g = load<V>(r.gates + 2 * H + j);
      const V o = load<V>(r.gates + 3 * H + j), c = load<V>(r.prev[1] + j);
      const V cn = f * c + i * g, tc = tanh_of(cn);
      const V dh = load<V>(r.dnext[0] + j);
      const V d_o = dh * tc * o * (one - o);
      const V dc = load<V>(r.dnext[1] + j) + dh * o * (one - tc * tc) + d_o * load<V>(p + 2 * H + j);
      const V d_i = dc * g * i * (one - i), d_f = dc * c * f * (one - f);
      put(r.dgates + j, d_i);
      put(r.dgates + H + j, d_f);
      put(r.dgates + 2 * H + j, dc * i * (one - g * g));
      put(r.dgates + 3 * H + j, d_o);
      put(r.dprev[0] + j, V(T(0)));
      put(r.dprev[1] + j, dc * f + d_i * load<V>(p + j) + d_f * load<V>(p + H + j));
      put(dp + j, load<V>(dp + j) + d_i * c);
      put(dp + H + j, load<V>(dp + H + j) + d_f * c);
      put(dp + 2 * H + j, load<V>(dp + 2 * H + j) + d_o * cn);
    });
  }
};

}  // namespace

const kiln_recurrent_kernel& peephole_lstm_kernel() {
  static constexpr kiln_recurrent_kernel k = sdk::make_recurrent_kernel<PeepholeLSTM>();
  return k;
}

}  // namespace kiln::plugins::builtin

// The fused LSTM (Note [Fused recurrent skeleton]): gates i, f, g, o as LSTMCell.

#include "kiln/recurrent_kernel.hpp"
#include "plugins/builtin/builtin.hpp"
#include "kiln/lanes.hpp"

namespace kiln::plugins::builtin {
namespace {

using namespace sdk::simd;

struct LSTM {
  static constexpr const char* name = "lstm";
  static constexpr const char* description = "LSTMCell: gates i, f, g, o; c' = f c + i g, h' = o tanh_of(c')";
  static constexpr int gates = 4, states = 2, extras = 0, late_gates = 0;
  static constexpr bool split_recurrent = false;
  static constexpr bool gradients_in_place = true;  // backward reads a lane's gates, then writes their gradients

  // Keeps the post-activations in gates and tanh_of(c') in extra.
  template <class T>
  static void forward(const sdk::Forward<T>& r) {
    const std::int64_t H = r.H;
    lanes<T>(H, [&](auto v, std::int64_t j) {
      using V = decltype(v);
      const V i = sigmoid(load<V>(r.gates + j)), f = sigmoid(load<V>(r.gates + H + j));
      const V g = tanh_of(load<V>(r.gates + 2 * H + j)), o = sigmoid(load<V>(r.gates + 3 * H + j));
      const V c = f * load<V>(r.prev[1] + j) + i * g;
      const V tc = tanh_of(c);
      put(r.gates + j, i), put(r.gates + H + j, f), put(r.gates + 2 * H + j, g), put(r.gates + 3 * H + j, o);
      put(r.next[0] + j, o * tc);
      put(r.next[1] + j, c);
    });
  }

  template <class T>
  static void backward(const sdk::Backward<T>& r) {
    const std::int64_t H = r.H;
    lanes<T>(H, [&](auto v, std::int64_t j) {
      using V = decltype(v);
      const V one(T(1));
      const V i = load<V>(r.gates + j), f = load<V>(r.gates + H + j), g = load<V>(r.gates + 2 * H + j);
      const V o = load<V>(r.gates + 3 * H + j), cp = load<V>(r.prev[1] + j);
      const V tc = tanh_of(f * cp + i * g);
      const V dh = load<V>(r.dnext[0] + j);
      const V dc = load<V>(r.dnext[1] + j) + dh * o * (one - tc * tc);
      put(r.dgates + j, dc * g * i * (one - i));
      put(r.dgates + H + j, dc * cp * f * (one - f));
      put(r.dgates + 2 * H + j, dc * i * (one - g * g));
      put(r.dgates + 3 * H + j, dh * tc * o * (one - o));
      put(r.dprev[0] + j, V(T(0)));
      put(r.dprev[1] + j, dc * f);
    });
  }
};

}  // namespace

const kiln_recurrent_kernel& lstm_kernel() {
  static constexpr kiln_recurrent_kernel k = sdk::make_recurrent_kernel<LSTM>();
  return k;
}

}  // namespace kiln::plugins::builtin

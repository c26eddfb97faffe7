// The fused Elman RNN (Note [Fused recurrent skeleton]): h' = tanh_of(pre) or relu(pre),
// pre = W_ih x + b_ih + W_hh h + b_hh.

#include "kiln/recurrent_kernel.hpp"
#include "plugins/builtin/builtin.hpp"
#include "kiln/lanes.hpp"

namespace kiln::plugins::builtin {
namespace {

using namespace sdk::simd;

template <bool Relu>
struct RNN {
  static constexpr const char* name = Relu ? "rnn_relu" : "rnn_tanh";
  static constexpr const char* description = Relu ? "RNNCell, nonlinearity relu" : "RNNCell, nonlinearity tanh";
  static constexpr int gates = 1, states = 1, extras = 0, late_gates = 0;
  static constexpr bool split_recurrent = false;
  static constexpr bool gradients_in_place = true;  // backward reads a lane's gates, then writes their gradients

  // Keeps h' in gates.
  template <class T>
  static void forward(const sdk::Forward<T>& r) {
    lanes<T>(r.H, [&](auto v, std::int64_t j) {
      using V = decltype(v);
      const V h = Relu ? relu(load<V>(r.gates + j)) : tanh_of(load<V>(r.gates + j));
      put(r.gates + j, h);
      put(r.next[0] + j, h);
    });
  }

  template <class T>
  static void backward(const sdk::Backward<T>& r) {
    lanes<T>(r.H, [&](auto v, std::int64_t j) {
      using V = decltype(v);
      const V h = load<V>(r.gates + j), dh = load<V>(r.dnext[0] + j);
      put(r.dgates + j, Relu ? relu_grad(h, dh) : dh * (V(T(1)) - h * h));
      put(r.dprev[0] + j, V(T(0)));
    });
  }
};

}  // namespace

const kiln_recurrent_kernel& rnn_tanh_kernel() {
  static constexpr kiln_recurrent_kernel k = sdk::make_recurrent_kernel<RNN<false>>();
  return k;
}

const kiln_recurrent_kernel& rnn_relu_kernel() {
  static constexpr kiln_recurrent_kernel k = sdk::make_recurrent_kernel<RNN<true>>();
  return k;
}

}  // namespace kiln::plugins::builtin

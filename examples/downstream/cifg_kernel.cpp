// The fused CIFG kernel on Kiln's SDK skeleton: only the pointwise math of one batch row, forward and
// backward; the skeleton does the GEMMs, the time loop, lengths, both directions and threads.

#include <kiln/lanes.hpp>
#include <kiln/recurrent_kernel.hpp>

namespace {

using namespace kiln::sdk::simd;  // lanes, load, put, sigmoid, tanh_of

struct CIFG {
  static constexpr const char* name = "cifg";  // the registered cell it claims to equal
  static constexpr const char* description = "CIFGCell: i, g, o; c' = (1 - i) c + i g, h' = o tanh(c')";
  static constexpr int gates = 3, states = 2, extras = 0, late_gates = 0;
  static constexpr bool split_recurrent = false;
  static constexpr bool gradients_in_place = true;  // backward reads a lane's gates, then writes their gradients

  // Leaves the activations i, g, o in gates for backward.
  template <class T>
  static void forward(const kiln::sdk::Forward<T>& r) {
    const std::int64_t H = r.H;
    lanes<T>(H, [&](auto v, std::int64_t j) {
      using V = decltype(v);
      const V i = sigmoid(load<V>(r.gates + j)), g = tanh_of(load<V>(r.gates + H + j)), o = sigmoid(load<V>(r.gates + 2 * H + j));
      const V c = (V(T(1)) - i) * load<V>(r.prev[1] + j) + i * g;
      put(r.gates + j, i), put(r.gates + H + j, g), put(r.gates + 2 * H + j, o);
      put(r.next[0] + j, o * tanh_of(c));
      put(r.next[1] + j, c);
    });
  }

  template <class T>
  static void backward(const kiln::sdk::Backward<T>& r) {
    const std::int64_t H = r.H;
    lanes<T>(H, [&](auto v, std::int64_t j) {
      using V = decltype(v);
      const V one(T(1));
      const V i = load<V>(r.gates + j), g = load<V>(r.gates + H + j), o = load<V>(r.gates + 2 * H + j);
      const V cp = load<V>(r.prev[1] + j), tc = tanh_of((one - i) * cp + i * g);
      const V dh = load<V>(r.dnext[0] + j);
      const V dc = load<V>(r.dnext[1] + j) + dh * o * (one - tc * tc);
      put(r.dgates + j, dc * (g - cp) * i * (one - i));
      put(r.dgates + H + j, dc * i * (one - g * g));
      put(r.dgates + 2 * H + j, dh * tc * o * (one - o));
      put(r.dprev[0] + j, V(T(0)));
      put(r.dprev[1] + j, dc * (one - i));
    });
  }
};

}  // namespace

const kiln_recurrent_kernel& cifg_kernel() {
  static constexpr kiln_recurrent_kernel k = kiln::sdk::make_recurrent_kernel<CIFG>();
  return k;
}

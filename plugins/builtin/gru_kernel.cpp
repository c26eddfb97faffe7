// The fused GRUs (Note [Fused recurrent skeleton]), gates r, z, n as GRUCell:
//   PyTorch's: n = tanh_of(x_n + r * (W_hn h + b_hn))   the recurrent part kept apart (split_recurrent)
//   Cho's:     n = tanh_of(x_n + W_hn (r * h) + b_hn)   n is a late gate reading m = r * h
//   h' = (1 - z) n + z h

#include "kiln/recurrent_kernel.hpp"
#include "plugins/builtin/builtin.hpp"
#include "kiln/lanes.hpp"

namespace kiln::plugins::builtin {
namespace {

using namespace sdk::simd;

struct GRU {
  static constexpr const char* name = "gru";
  static constexpr const char* description = "GRUCell (reset_after, PyTorch's): n = tanh_of(x_n + r (W_hn h + b_hn))";
  static constexpr int gates = 3, states = 1, extras = 1, late_gates = 0;
  static constexpr bool split_recurrent = true;
  static constexpr bool gradients_in_place = true;

  // Keeps r, z, n in gates and W_hn h + b_hn in extra.
  template <class T>
  static void forward(const sdk::Forward<T>& f) {
    const std::int64_t H = f.H;
    lanes<T>(H, [&](auto v, std::int64_t j) {
      using V = decltype(v);
      const V r = sigmoid(load<V>(f.gates + j) + load<V>(f.hp + j));
      const V z = sigmoid(load<V>(f.gates + H + j) + load<V>(f.hp + H + j));
      const V hn = load<V>(f.hp + 2 * H + j);
      const V n = tanh_of(load<V>(f.gates + 2 * H + j) + r * hn);
      put(f.gates + j, r), put(f.gates + H + j, z), put(f.gates + 2 * H + j, n);
      put(f.extra + j, hn);
      put(f.next[0] + j, (V(T(1)) - z) * n + z * load<V>(f.prev[0] + j));
    });
  }

  template <class T>
  static void backward(const sdk::Backward<T>& b) {
    const std::int64_t H = b.H;
    lanes<T>(H, [&](auto v, std::int64_t j) {
      using V = decltype(v);
      const V one(T(1));
      const V r = load<V>(b.gates + j), z = load<V>(b.gates + H + j), n = load<V>(b.gates + 2 * H + j);
      const V hn = load<V>(b.extra + j), h = load<V>(b.prev[0] + j), dh = load<V>(b.dnext[0] + j);
      const V dn = dh * (one - z) * (one - n * n);
      const V dr = dn * hn * r * (one - r);
      const V dz = dh * (h - n) * z * (one - z);
      put(b.dgates + j, dr), put(b.dgates + H + j, dz), put(b.dgates + 2 * H + j, dn);
      put(b.dhp + j, dn * r);
      put(b.dprev[0] + j, dh * z);
    });
  }
};

struct GRUResetBefore {
  static constexpr const char* name = "gru_reset_before";
  static constexpr const char* description = "GRUCell (reset_after=false, Cho et al.'s): n = tanh_of(x_n + W_hn (r h) + b_hn)";
  static constexpr int gates = 3, states = 1, extras = 0, late_gates = 1;
  static constexpr bool split_recurrent = false;
  static constexpr bool gradients_in_place = true;  // backward_late writes z, n's; backward_early reads only r

  template <class T>
  static void forward_early(const sdk::Forward<T>& f) {
    const std::int64_t H = f.H;
    lanes<T>(H, [&](auto v, std::int64_t j) {
      using V = decltype(v);
      const V r = sigmoid(load<V>(f.gates + j)), z = sigmoid(load<V>(f.gates + H + j));
      put(f.gates + j, r), put(f.gates + H + j, z);
      put(f.m + j, r * load<V>(f.prev[0] + j));
    });
  }

  template <class T>
  static void forward_late(const sdk::Forward<T>& f) {
    const std::int64_t H = f.H;
    lanes<T>(H, [&](auto v, std::int64_t j) {
      using V = decltype(v);
      const V z = load<V>(f.gates + H + j), n = tanh_of(load<V>(f.gates + 2 * H + j));
      put(f.gates + 2 * H + j, n);
      put(f.next[0] + j, (V(T(1)) - z) * n + z * load<V>(f.prev[0] + j));
    });
  }

  template <class T>
  static void backward_late(const sdk::Backward<T>& b) {
    const std::int64_t H = b.H;
    lanes<T>(H, [&](auto v, std::int64_t j) {
      using V = decltype(v);
      const V one(T(1));
      const V z = load<V>(b.gates + H + j), n = load<V>(b.gates + 2 * H + j);
      const V h = load<V>(b.prev[0] + j), dh = load<V>(b.dnext[0] + j);
      put(b.dgates + H + j, dh * (h - n) * z * (one - z));
      put(b.dgates + 2 * H + j, dh * (one - z) * (one - n * n));
      put(b.dprev[0] + j, dh * z);
    });
  }

  // m = r h: dr = dm h, dh += dm r.
  template <class T>
  static void backward_early(const sdk::Backward<T>& b) {
    lanes<T>(b.H, [&](auto v, std::int64_t j) {
      using V = decltype(v);
      const V r = load<V>(b.gates + j), dm = load<V>(b.dm + j);
      put(b.dgates + j, dm * load<V>(b.prev[0] + j) * r * (V(T(1)) - r));
      put(b.dprev[0] + j, load<V>(b.dprev[0] + j) + dm * r);
    });
  }
};

}  // namespace

const kiln_recurrent_kernel& gru_kernel() {
  static constexpr kiln_recurrent_kernel k = sdk::make_recurrent_kernel<GRU>();
  return k;
}

const kiln_recurrent_kernel& gru_reset_before_kernel() {
  static constexpr kiln_recurrent_kernel k = sdk::make_recurrent_kernel<GRUResetBefore>();
  return k;
}

}  // namespace kiln::plugins::builtin

// A fused minimal gated unit (Zhou et al., 2016) as an external Kiln plugin. The generic cell it
// replaces is kiln::nn::MGUCell (layers/research_cells.cpp):
//   f = sigmoid(W_if x + b_if + W_hf h + b_hf)
//   n = tanh(W_in x + b_in + W_hn (f h) + b_hn)
//   h' = (1 - f) h + f n
// With the SDK's skeleton the plugin writes only the pointwise math of one batch row: f is an early
// gate that makes m = f h, and n a late gate that reads m through W_hn. Plain loops: the compiler
// may vectorise them, and the plugin needs no library but the SDK headers.

#include <cmath>

#include "kiln/recurrent_kernel.hpp"

namespace {

template <class T>
T sigmoid(T v) {
  return T(1) / (T(1) + std::exp(-v));
}

struct MGU {
  static constexpr const char* name = "mgu";
  static constexpr const char* description = "MGUCell: f = sigmoid(.), n = tanh(x_n + W_hn (f h)), h' = (1 - f) h + f n";
  static constexpr int gates = 2, states = 1, extras = 0, late_gates = 1;
  static constexpr bool split_recurrent = false;

  template <class T>
  static void forward_early(const kiln::sdk::Forward<T>& r) {
    for (std::int64_t j = 0; j < r.H; ++j) {
      const T f = sigmoid(r.gates[j]);
      r.gates[j] = f;
      r.m[j] = f * r.prev[0][j];
    }
  }

  template <class T>
  static void forward_late(const kiln::sdk::Forward<T>& r) {
    const std::int64_t H = r.H;
    for (std::int64_t j = 0; j < H; ++j) {
      const T f = r.gates[j], n = std::tanh(r.gates[H + j]);
      r.gates[H + j] = n;
      r.next[0][j] = (T(1) - f) * r.prev[0][j] + f * n;
    }
  }

  // Leaves dL/df (after the sigmoid) in the f slot for backward_early to finish.
  template <class T>
  static void backward_late(const kiln::sdk::Backward<T>& r) {
    const std::int64_t H = r.H;
    for (std::int64_t j = 0; j < H; ++j) {
      const T f = r.gates[j], n = r.gates[H + j], h = r.prev[0][j], dh = r.dnext[0][j];
      r.dgates[H + j] = dh * f * (T(1) - n * n);
      r.dgates[j] = dh * (n - h);
      r.dprev[0][j] = dh * (T(1) - f);
    }
  }

  // m = f h: df += dm h, dh += dm f; then through the sigmoid.
  template <class T>
  static void backward_early(const kiln::sdk::Backward<T>& r) {
    for (std::int64_t j = 0; j < r.H; ++j) {
      const T f = r.gates[j], df = r.dgates[j] + r.dm[j] * r.prev[0][j];
      r.dgates[j] = df * f * (T(1) - f);
      r.dprev[0][j] += r.dm[j] * f;
    }
  }
};

constexpr kiln_recurrent_kernel kKernels[] = {kiln::sdk::make_recurrent_kernel<MGU>()};
constexpr std::uint32_t kFlags[] = {kiln::sdk::kRecurrentKernelFlags};  // what the skeleton can take
constexpr kiln_plugin kPlugin{KILN_PLUGIN_ABI_VERSION, "mgu_example", "1.0", 1, kKernels, 0, nullptr /* no attention */, kFlags};

}  // namespace

extern "C" KILN_PLUGIN_EXPORT const kiln_plugin* kiln_plugin_entry(void) { return &kPlugin; }

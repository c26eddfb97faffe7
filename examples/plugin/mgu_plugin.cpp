// A fused minimal gated unit (Zhou et al., 2016) as an external Kiln plugin. The generic cell it
// replaces is kiln::nn::MGUCell (layers/research_cells.cpp):
//   f = sigmoid(W_if x + b_if + W_hf h + b_hf)
//   n = tanh(W_in x + b_in + W_hn (f h) + b_hn)
//   h' = (1 - f) h + f n
// With the SDK's skeleton the plugin writes only the pointwise math of one batch row: f is an early
// gate that makes m = f h, and n a late gate that reads m through W_hn. Each pass is written once with
// generic arithmetic and run by kiln::sdk::simd::lanes on SIMD batches, then on the scalar tail.

#include "kiln/lanes.hpp"
#include "kiln/recurrent_kernel.hpp"

namespace {

using namespace kiln::sdk::simd;  // lanes, load, put, sigmoid, tanh_of

struct MGU {
  static constexpr const char* name = "mgu";
  static constexpr const char* description = "MGUCell: f = sigmoid(.), n = tanh(x_n + W_hn (f h)), h' = (1 - f) h + f n";
  static constexpr int gates = 2, states = 1, extras = 0, late_gates = 1;
  static constexpr bool split_recurrent = false;

  template <class T>
  static void forward_early(const kiln::sdk::Forward<T>& r) {
    lanes<T>(r.H, [&](auto v, std::int64_t j) {
      using V = decltype(v);
      const V f = sigmoid(load<V>(r.gates + j));
      put(r.gates + j, f);
      put(r.m + j, f * load<V>(r.prev[0] + j));
    });
  }

  template <class T>
  static void forward_late(const kiln::sdk::Forward<T>& r) {
    const std::int64_t H = r.H;
    lanes<T>(H, [&](auto v, std::int64_t j) {
      using V = decltype(v);
      const V f = load<V>(r.gates + j), n = tanh_of(load<V>(r.gates + H + j)), h = load<V>(r.prev[0] + j);
      put(r.gates + H + j, n);
      put(r.next[0] + j, (V(T(1)) - f) * h + f * n);
    });
  }

  // Leaves dL/df (after the sigmoid) in the f slot for backward_early to finish.
  template <class T>
  static void backward_late(const kiln::sdk::Backward<T>& r) {
    const std::int64_t H = r.H;
    lanes<T>(H, [&](auto v, std::int64_t j) {
      using V = decltype(v);
      const V one(T(1));
      const V f = load<V>(r.gates + j), n = load<V>(r.gates + H + j), h = load<V>(r.prev[0] + j), dh = load<V>(r.dnext[0] + j);
      put(r.dgates + H + j, dh * f * (one - n * n));
      put(r.dgates + j, dh * (n - h));
      put(r.dprev[0] + j, dh * (one - f));
    });
  }

  // m = f h: df += dm h, dh += dm f; then through the sigmoid.
  template <class T>
  static void backward_early(const kiln::sdk::Backward<T>& r) {
    lanes<T>(r.H, [&](auto v, std::int64_t j) {
      using V = decltype(v);
      const V f = load<V>(r.gates + j), dm = load<V>(r.dm + j);
      const V df = load<V>(r.dgates + j) + dm * load<V>(r.prev[0] + j);
      put(r.dgates + j, df * f * (V(T(1)) - f));
      put(r.dprev[0] + j, load<V>(r.dprev[0] + j) + dm * f);
    });
  }
};

constexpr kiln_recurrent_kernel kKernels[] = {kiln::sdk::make_recurrent_kernel<MGU>()};
constexpr std::uint32_t kFlags[] = {kiln::sdk::kRecurrentKernelFlags};  // what the skeleton can take and needs
constexpr kiln_plugin kPlugin{KILN_PLUGIN_ABI_VERSION, "mgu_example", "1.0", 1, kKernels, 0, nullptr /* no attention */, kFlags};

}  // namespace

extern "C" KILN_PLUGIN_EXPORT const kiln_plugin* kiln_plugin_entry(void) { return &kPlugin; }

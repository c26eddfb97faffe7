#include "plugins/builtin/builtin.hpp"

#include "kiln/recurrent_kernel.hpp"

namespace kiln::plugins::builtin {

const kiln_plugin& plugin() {
  static const kiln_recurrent_kernel kernels[] = {lstm_kernel(), gru_kernel(), gru_reset_before_kernel(), rnn_tanh_kernel(),
                                                  rnn_relu_kernel(), layer_norm_lstm_kernel(), peephole_lstm_kernel()};
  static const kiln_attention_kernel attention[] = {sdpa_kernel()};
  // Every kernel is the SDK's skeleton: y and dy by strides, y read back in backward.
  static constexpr std::uint32_t flags[] = {sdk::kRecurrentKernelFlags, sdk::kRecurrentKernelFlags, sdk::kRecurrentKernelFlags,
                                            sdk::kRecurrentKernelFlags, sdk::kRecurrentKernelFlags, sdk::kRecurrentKernelFlags,
                                            sdk::kRecurrentKernelFlags};
  static const kiln_plugin p{KILN_PLUGIN_ABI_VERSION, "builtin", "0.4.0", 7, kernels, 1, attention, flags};
  return p;
}

}  // namespace kiln::plugins::builtin

#include "plugins/builtin/builtin.hpp"

namespace kiln::plugins::builtin {

const kiln_plugin& plugin() {
  static const kiln_recurrent_kernel kernels[] = {lstm_kernel(), gru_kernel(), gru_reset_before_kernel(), rnn_tanh_kernel(),
                                                  rnn_relu_kernel(), layer_norm_lstm_kernel()};
  static const kiln_attention_kernel attention[] = {sdpa_kernel()};
  static const kiln_plugin p{KILN_PLUGIN_ABI_VERSION, "builtin", "0.2.0", 6, kernels, 1, attention};
  return p;
}

}  // namespace kiln::plugins::builtin

#pragma once
// Internal: Kiln's own fused kernels, written with the plugin SDK (plugins/sdk/kiln/recurrent_kernel.hpp)
// against the same C interface as external plugins, and registered by register_builtin().

#include "kiln/plugin.h"

namespace kiln::plugins::builtin {

const kiln_recurrent_kernel& lstm_kernel();
const kiln_recurrent_kernel& gru_kernel();               // PyTorch's GRU (reset after the recurrent matmul)
const kiln_recurrent_kernel& gru_reset_before_kernel();  // Cho et al.'s GRU
const kiln_recurrent_kernel& rnn_tanh_kernel();
const kiln_recurrent_kernel& rnn_relu_kernel();
const kiln_recurrent_kernel& layer_norm_lstm_kernel();  // Ba et al.'s layer-normalised LSTM
const kiln_recurrent_kernel& peephole_lstm_kernel();    // Gers & Schmidhuber's peephole LSTM

/// Scaled dot-product attention ("sdpa"): strided operands, masks, causal, dropout.
const kiln_attention_kernel& sdpa_kernel();

/// The built-in plugin: every kernel above.
const kiln_plugin& plugin();

}  // namespace kiln::plugins::builtin

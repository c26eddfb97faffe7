#pragma once
// A fused LSTM: one layer and direction over a whole sequence as a single tape node, the reference
// for what a plugin kernel does (issue 4). It reads the same parameters as LSTMCell and is checked
// against the generic graph, outputs and every gradient (tests/plugins/fused_lstm_test.cpp).
//
// Note [Fused LSTM]: forward projects the inputs of all time steps in one GEMM (X W_ih^T + b_ih +
// b_hh), then per step adds h W_hh^T with one GEMM and applies the gate nonlinearities and the state
// update in one vectorised pass, keeping only the post-activation gates, tanh(c) and the states each
// step read. Backward runs the gate gradients in one pass per step, one GEMM per step for dh, and
// dX, dW_ih, dW_hh and the bias gradients for all steps in one GEMM (or column sum) each.

#include <vector>

#include "autograd/variable.hpp"

namespace kiln::plugins {

struct FusedLSTMResult {
  Variable output;  ///< [T, B, H], zero past each sequence's length
  Variable h_n;     ///< [B, H]
  Variable c_n;     ///< [B, H]
};

/// x [T, B, I] time-major; h0, c0 [B, H]; weights as LSTMCell (gate order i, f, g, o); biases may be
/// undefined. lengths: one per sequence in [0, T], or empty for all T. reverse walks t = T-1 .. 0.
FusedLSTMResult fused_lstm(const Variable& x, const Variable& h0, const Variable& c0, const Variable& w_ih,
                           const Variable& w_hh, const Variable& b_ih, const Variable& b_hh,
                           const std::vector<std::int64_t>& lengths, bool reverse);

}  // namespace kiln::plugins

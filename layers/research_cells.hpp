#pragma once
// Research cells, written only with generic ops, as a researcher would add one. Each gets stacking,
// both directions and lengths from Recurrent (their layers: sequence/research_layers.hpp).

#include "layers/rnn_cell.hpp"

namespace kiln::nn {

/// Layer-normalised LSTM (Ba, Kiros & Hinton, 2016):
///   gates = LN_ih(W_ih x) + LN_hh(W_hh h) + bias, split as i, f, g, o
///   c' = sigmoid(f) c + sigmoid(i) tanh(g);  h' = sigmoid(o) tanh(LN_c(c'))
/// Parameters: weight_ih, weight_hh, bias, and the gains and shifts ln_ih_weight/bias,
/// ln_hh_weight/bias, ln_c_weight/bias.
class LayerNormLSTMCell : public RecurrentCell {
 public:
  LayerNormLSTMCell(std::int64_t input_size, std::int64_t hidden_size, double eps = 1e-5);
  void reset() override;
  /// The built-in fused kernel computes with eps 1e-5; another eps runs the generic graph.
  KernelClaim kernel_claim() const override { return eps_ == 1e-5 ? claim<LayerNormLSTMCell>("layer_norm_lstm") : KernelClaim{}; }
  State step(const Variable& x, const State& state) override;
  std::size_t state_size() const override { return 2; }
  std::vector<std::string> gate_names() const override { return {"i", "f", "g", "o"}; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }

 private:
  double eps_;
  Variable ln_ih_w_, ln_ih_b_, ln_hh_w_, ln_hh_b_, ln_c_w_, ln_c_b_;
};

/// LSTM with peephole connections (Gers & Schmidhuber, 2000): the gates also see the cell state.
///   i = sigmoid(. + p_i c), f = sigmoid(. + p_f c), c' = f c + i tanh(.), o = sigmoid(. + p_o c'),
///   h' = o tanh(c'). Parameters: PyTorch's four, plus weight_peephole [3, H] (rows i, f, o).
class PeepholeLSTMCell : public RecurrentCell {
 public:
  PeepholeLSTMCell(std::int64_t input_size, std::int64_t hidden_size, bool bias = true);
  void reset() override;
  KernelClaim kernel_claim() const override { return claim<PeepholeLSTMCell>("peephole_lstm"); }
  State step(const Variable& x, const State& state) override;
  std::size_t state_size() const override { return 2; }
  std::vector<std::string> gate_names() const override { return {"i", "f", "g", "o"}; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }

 private:
  bool bias_;
  Variable peephole_;
};

/// Minimal gated unit (Zhou et al., 2016): one forget gate does the work of the GRU's two.
///   f = sigmoid(W_if x + b_if + W_hf h + b_hf)
///   n = tanh(W_in x + b_in + W_hn (f h) + b_hn)
///   h' = (1 - f) h + f n
/// Parameters as PyTorch would name them: weight_ih [2H, I], weight_hh [2H, H], bias_ih, bias_hh [2H]
/// (gate order f, n). Its fused kernel ships as an external plugin (examples/plugin/).
class MGUCell : public RecurrentCell {
 public:
  MGUCell(std::int64_t input_size, std::int64_t hidden_size, bool bias = true);
  void reset() override { register_gate_parameters(2, bias_); }
  State step(const Variable& x, const State& state) override;
  std::vector<std::string> gate_names() const override { return {"f", "n"}; }
  KernelClaim kernel_claim() const override { return claim<MGUCell>("mgu"); }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }

 private:
  bool bias_;
};

}  // namespace kiln::nn

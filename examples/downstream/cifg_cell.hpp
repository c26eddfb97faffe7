#pragma once
// The coupled input-forget gate LSTM (CIFG; Greff et al., 2015): the forget gate is 1 - the input gate.
//   i, g, o = sigmoid(.), tanh(.), sigmoid(.) of W_ih x + b_ih + W_hh h + b_hh (3 gates)
//   c' = (1 - i) c + i g;  h' = o tanh(c')

#include <kiln/kiln.hpp>

class CIFGCell : public kiln::nn::RecurrentCell {
 public:
  CIFGCell(std::int64_t input_size, std::int64_t hidden_size, bool bias = true);
  void reset() override { register_gate_parameters(3, bias_); }
  kiln::nn::State step(const kiln::Variable& x, const kiln::nn::State& state) override;
  std::size_t state_size() const override { return 2; }
  /// The fused kernel "cifg" (cifg_kernel.cpp) computes exactly this class's step.
  kiln::nn::KernelClaim kernel_claim() const override { return claim<CIFGCell>("cifg"); }
  std::shared_ptr<kiln::nn::Module> clone() const override { return clone_as(*this); }

 private:
  bool bias_;
};

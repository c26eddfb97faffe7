#pragma once
// Recurrent cells written only with generic ops: one step, x [B, I] and state [B, H] -> new state.
// Each is a short, readable template for new variants: copy one, change a line, and the Recurrent
// layer (sequence/recurrent.hpp) gives it stacking, both directions and per-sequence lengths for free.
// Parameter names, gate order and initialisation are PyTorch's: weight_ih [G*H, I], weight_hh
// [G*H, H], bias_ih and bias_hh [G*H], all U(-1/sqrt(H), 1/sqrt(H)).

#include <type_traits>
#include <typeindex>
#include <typeinfo>
#include <vector>

#include "layers/module.hpp"

namespace kiln::nn {

/// The state of a cell: {h} for RNN and GRU cells, {h, c} for LSTM cells.
using State = std::vector<Variable>;

/// A cell's claim that a registered fused kernel computes its step (see RecurrentCell::kernel_claim).
struct KernelClaim {
  std::string kernel;                               ///< the kernel's registered name, e.g. "lstm"; empty: none
  std::type_index claimed_by = typeid(void);        ///< the class whose step() the kernel equals
  explicit operator bool() const { return !kernel.empty(); }
};

class RecurrentCell : public Module {
 public:
  RecurrentCell(std::string type_name, std::int64_t input_size, std::int64_t hidden_size);
  /// One time step. x [B, input_size]; every state tensor [B, hidden_size].
  virtual State step(const Variable& x, const State& state) = 0;
  /// How many tensors the state holds (1, or 2 for LSTM-like cells).
  virtual std::size_t state_size() const { return 1; }
  /// The state's tensor that is the step's output (h).
  virtual Variable output(const State& state) const { return state.at(0); }
  /// The fused kernel (kiln/plugin.h) that computes this cell's step, claimed by the class that defines
  /// step() and named after itself:
  ///   KernelClaim kernel_claim() const override { return claim<LSTMCell>("lstm"); }
  /// Note [Kernel claims]: the claim is trusted only for an object of exactly that class. A subclass
  /// inherits the claim but not the trust: a layer runs the kernel for it only after confirming once,
  /// numerically, that the kernel reproduces the subclass's own step (outputs and gradients), so a
  /// subclass that changes step() runs its own math. Empty: no claim (the graph pass may still find one).
  virtual KernelClaim kernel_claim() const { return {}; }
  /// The gates whose rows weight_ih (and the biases) stack, in order: PyTorch's LSTM {"i", "f", "g", "o"},
  /// GRU {"r", "z", "n"}; empty when the weights are not gate-shaped. RecurrentOptions::forget_bias finds
  /// the forget gate ("f") here, so a researcher's cell that names its gates gets it too.
  virtual std::vector<std::string> gate_names() const { return {}; }
  /// The claimed kernel's name when this object is exactly the claiming class (a trusted claim), else "".
  std::string trusted_kernel() const;
  /// The object's own class as its author wrote it ("ForgetBiasLSTMCell", "kiln::nn::LSTMCell"), for
  /// messages: a subclass keeps its base's type_name().
  std::string class_name() const;
  State zero_state(std::int64_t batch, DType dtype) const;
  /// One step from a zero state; returns h.
  Variable forward(const Variable& x) override;
  std::int64_t input_size() const { return input_size_; }
  std::int64_t hidden_size() const { return hidden_size_; }
  std::string extra_repr() const override;

 protected:
  /// A claim made by class Cell (the class whose step() `kernel` equals).
  template <class Cell>
  KernelClaim claim(std::string kernel) const {
    static_assert(std::is_base_of_v<RecurrentCell, Cell>, "claim<Cell>: Cell must be a RecurrentCell");
    return {std::move(kernel), typeid(Cell)};
  }
  /// Registers weight_ih, weight_hh (and bias_ih, bias_hh, or one "bias") for `gates` gates,
  /// PyTorch-initialised.
  void register_gate_parameters(std::int64_t gates, bool bias, bool single_bias = false);
  void check_step(const Variable& x, const State& state) const;
  Variable weight_ih_, weight_hh_, bias_ih_, bias_hh_;

 private:
  std::int64_t input_size_, hidden_size_;
};

enum class Nonlinearity { Tanh, ReLU };

struct RNNCellOptions {
  RNNCellOptions(std::int64_t input_size, std::int64_t hidden_size) : input_size_(input_size), hidden_size_(hidden_size) {}
  RNNCellOptions& bias(bool on) { bias_ = on; return *this; }
  /// One bias ("bias", Keras's convention) instead of PyTorch's bias_ih and bias_hh.
  RNNCellOptions& single_bias(bool on) { single_bias_ = on; return *this; }
  RNNCellOptions& nonlinearity(Nonlinearity n) { nonlinearity_ = n; return *this; }
  std::int64_t input_size_, hidden_size_;
  bool bias_ = true, single_bias_ = false;
  Nonlinearity nonlinearity_ = Nonlinearity::Tanh;
};

/// h' = tanh(W_ih x + b_ih + W_hh h + b_hh)   (or relu)
class RNNCell : public RecurrentCell {
 public:
  explicit RNNCell(RNNCellOptions options);
  void reset() override { register_gate_parameters(1, options_.bias_, options_.single_bias_); }
  State step(const Variable& x, const State& state) override;
  KernelClaim kernel_claim() const override {
    return claim<RNNCell>(options_.nonlinearity_ == Nonlinearity::ReLU ? "rnn_relu" : "rnn_tanh");
  }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }

 private:
  RNNCellOptions options_;
};

struct LSTMCellOptions {
  LSTMCellOptions(std::int64_t input_size, std::int64_t hidden_size) : input_size_(input_size), hidden_size_(hidden_size) {}
  LSTMCellOptions& bias(bool on) { bias_ = on; return *this; }
  /// One bias ("bias", Keras's convention) instead of PyTorch's bias_ih and bias_hh.
  LSTMCellOptions& single_bias(bool on) { single_bias_ = on; return *this; }
  std::int64_t input_size_, hidden_size_;
  bool bias_ = true, single_bias_ = false;
};

/// gates = W_ih x + b_ih + W_hh h + b_hh, split as i, f, g, o;
/// c' = sigmoid(f) c + sigmoid(i) tanh(g);  h' = sigmoid(o) tanh(c')
class LSTMCell : public RecurrentCell {
 public:
  explicit LSTMCell(LSTMCellOptions options);
  void reset() override { register_gate_parameters(4, options_.bias_, options_.single_bias_); }
  State step(const Variable& x, const State& state) override;
  std::size_t state_size() const override { return 2; }
  std::vector<std::string> gate_names() const override { return {"i", "f", "g", "o"}; }
  KernelClaim kernel_claim() const override { return claim<LSTMCell>("lstm"); }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }

 private:
  LSTMCellOptions options_;
};

struct GRUCellOptions {
  GRUCellOptions(std::int64_t input_size, std::int64_t hidden_size) : input_size_(input_size), hidden_size_(hidden_size) {}
  GRUCellOptions& bias(bool on) { bias_ = on; return *this; }
  /// One bias ("bias", Keras's convention) instead of PyTorch's bias_ih and bias_hh.
  GRUCellOptions& single_bias(bool on) { single_bias_ = on; return *this; }
  /// true (default): PyTorch's GRU, reset applied after the recurrent matmul.
  /// false: the original Cho et al. (2014) form, reset applied to h before the matmul.
  GRUCellOptions& reset_after(bool on) { reset_after_ = on; return *this; }
  std::int64_t input_size_, hidden_size_;
  bool bias_ = true, single_bias_ = false;
  bool reset_after_ = true;
};

/// r = sigmoid(W_ir x + b_ir + W_hr h + b_hr);  z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
/// n = tanh(W_in x + b_in + r (W_hn h + b_hn))          (reset_after, PyTorch)
/// n = tanh(W_in x + b_in + W_hn (r h) + b_hn)          (Cho et al.)
/// h' = (1 - z) n + z h
class GRUCell : public RecurrentCell {
 public:
  explicit GRUCell(GRUCellOptions options);
  void reset() override { register_gate_parameters(3, options_.bias_, options_.single_bias_); }
  State step(const Variable& x, const State& state) override;
  std::vector<std::string> gate_names() const override { return {"r", "z", "n"}; }
  KernelClaim kernel_claim() const override { return claim<GRUCell>(options_.reset_after_ ? "gru" : "gru_reset_before"); }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::string extra_repr() const override;

 private:
  GRUCellOptions options_;
};

}  // namespace kiln::nn

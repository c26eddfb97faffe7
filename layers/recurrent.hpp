#pragma once
// Recurrent: runs any RecurrentCell over time, with PyTorch's options and shapes. RNN, LSTM and GRU
// are Recurrent with the built-in cells; a user's cell gets stacking, both directions, dropout between
// layers and per-sequence lengths the same way.
//
//   kiln::nn::LSTM lstm(kiln::nn::LSTMOptions(128, 256).num_layers(2).bidirectional(true).batch_first(true));
//   auto [out, h_n, c_n] = lstm.forward(x);        // x [B, T, 128] -> out [B, T, 512], h_n/c_n [4, B, 256]
//   auto r = lstm.forward(x, {h0, c0}, lengths);   // lengths int64 [B]: no sorting, no packing
//
// Note [Variable lengths]: with lengths, step t of sequence b is live while t < lengths[b]. A live step
// updates the state and writes its output; past a sequence's end the state is held and the output is
// zero, so h_n/c_n are each sequence's state at its own last step, and the reverse direction, which
// walks t = T-1 .. 0, starts at each sequence's own end.

#include <functional>
#include <string>
#include <vector>

#include "layers/impl.hpp"
#include "layers/rnn_cell.hpp"

namespace kiln::plugins {
struct Kernel;
struct KernelChoice;
}

namespace kiln::nn {


struct RecurrentOptions {
  RecurrentOptions(std::int64_t input_size, std::int64_t hidden_size) : input_size_(input_size), hidden_size_(hidden_size) {}
  RecurrentOptions& num_layers(std::int64_t n) { num_layers_ = n; return *this; }
  RecurrentOptions& bias(bool on) { bias_ = on; return *this; }
  RecurrentOptions& batch_first(bool on) { batch_first_ = on; return *this; }
  /// Dropout on every layer's output except the last, while training.
  RecurrentOptions& dropout(double p) { dropout_ = p; return *this; }
  RecurrentOptions& bidirectional(bool on) { bidirectional_ = on; return *this; }
  /// RNN only.
  RecurrentOptions& nonlinearity(Nonlinearity n) { nonlinearity_ = n; return *this; }
  /// GRU only: false selects Cho et al.'s reset-before form (see GRUCellOptions).
  RecurrentOptions& reset_after(bool on) { reset_after_ = on; return *this; }
  /// One bias vector per layer and direction ("bias_l0"), Keras's convention, instead of PyTorch's two.
  RecurrentOptions& single_bias(bool on) { single_bias_ = on; return *this; }
  /// For the single-input forward(x) (e.g. inside Sequential): true returns the output sequence,
  /// false the last layer's final hidden state [B, D*H] (Keras's return_sequences=False).
  RecurrentOptions& return_sequences(bool on) { return_sequences_ = on; return *this; }
  RecurrentOptions& impl(Impl i) { impl_ = i; return *this; }
  std::int64_t input_size_, hidden_size_;
  std::int64_t num_layers_ = 1;
  bool bias_ = true, batch_first_ = false, bidirectional_ = false;
  double dropout_ = 0;
  Nonlinearity nonlinearity_ = Nonlinearity::Tanh;
  bool reset_after_ = true;
  bool single_bias_ = false;
  bool return_sequences_ = true;
  Impl impl_ = Impl::Auto;
};
using RNNOptions = RecurrentOptions;
using LSTMOptions = RecurrentOptions;
using GRUOptions = RecurrentOptions;

/// Makes the cell for one layer and direction: (input_size, hidden_size, the layer's options).
using CellFactory = std::function<std::shared_ptr<RecurrentCell>(std::int64_t, std::int64_t, const RecurrentOptions&)>;

struct RecurrentOutput {
  Variable output;  ///< [T, B, D*H] ([B, T, D*H] with batch_first); D = 2 when bidirectional
  Variable h_n;     ///< [L*D, B, H]
  Variable c_n;     ///< [L*D, B, H] for LSTM-like cells, undefined otherwise
};

class Recurrent : public Module {
 public:
  Recurrent(std::string type_name, RecurrentOptions options, CellFactory make_cell);
  void reset() override;
  /// input [T, B, I] ([B, T, I] with batch_first; [T, I] unbatched). initial_state: {h0} or
  /// {h0, c0}, each [L*D, B, H]; zeros when empty. lengths: int64 [B], each in [0, T].
  RecurrentOutput forward(const Variable& input, const std::vector<Variable>& initial_state,
                          const Variable& lengths = Variable());
  /// The output sequence, or with return_sequences(false) the last layer's final h for both
  /// directions, [B, D*H].
  Variable forward(const Variable& input) override;
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::string extra_repr() const override;
  const RecurrentOptions& options() const { return options_; }
  /// The cell of `layer` and direction (0 forward, 1 reverse); its parameters are this layer's
  /// weight_ih_l{layer}[_reverse] etc.
  const std::shared_ptr<RecurrentCell>& cell(std::int64_t layer, int direction = 0) const;
  /// Chooses the implementation for later forward calls.
  void set_impl(Impl impl) { options_.impl_ = impl; }
  /// Chooses the fused kernel forward runs (plugins/kernel_choice.hpp, Note [Kernel claims]), or null
  /// for the generic graph, with `why` saying why not. The choice is made once (and again after a
  /// plugin is loaded): a cell that inherits a kernel claim is confirmed numerically first, and the
  /// graph pass runs on a cell without a trusted claim. A kernel may still decline a particular call
  /// (a dtype, say): forward then runs the generic graph for it and says so on stderr once (an error
  /// with impl Fused).
  const plugins::Kernel* choose_kernel(std::string* why = nullptr) const;
  bool uses_fused(std::string* why = nullptr) const { return choose_kernel(why) != nullptr; }
  /// How the kernel was chosen, or why none runs.
  std::string kernel_report() const;

 private:
  RecurrentOptions options_;
  CellFactory make_cell_;
  std::vector<std::shared_ptr<RecurrentCell>> cells_;  // index layer * D + direction
  mutable std::shared_ptr<plugins::KernelChoice> choice_;  // made once per registry generation
  mutable std::uint64_t choice_generation_ = 0;
};

/// Elman RNN (tanh or relu), PyTorch's nn.RNN.
class RNN : public Recurrent {
 public:
  explicit RNN(RNNOptions options);
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
};

/// PyTorch's nn.LSTM (gate order i, f, g, o).
class LSTM : public Recurrent {
 public:
  explicit LSTM(LSTMOptions options);
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
};

/// PyTorch's nn.GRU (gate order r, z, n), or Cho et al.'s form with reset_after(false).
class GRU : public Recurrent {
 public:
  explicit GRU(GRUOptions options);
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
};

/// Runs `cell` over x [T, B, I] with the generic graph (step by step), from `state`, which becomes the
/// final state; returns the outputs [T, B, H]. lengths: one per sequence, or empty (Note [Variable
/// lengths]); reverse walks t = T-1 .. 0. The reference every fused kernel is checked against.
Variable run_cell(RecurrentCell& cell, const Variable& x, State& state, const std::vector<std::int64_t>& lengths = {},
                  bool reverse = false);

}  // namespace kiln::nn

#pragma once
// Recurrent: runs any RecurrentCell over time, with PyTorch's options and shapes. RNN, LSTM and GRU
// are Recurrent with the built-in cells; a user's cell gets stacking, both directions, dropout between
// layers and per-sequence lengths the same way.
//
//   kiln::nn::LSTM lstm(kiln::nn::LSTMOptions(128, 256).num_layers(2).bidirectional(true).batch_first(true));
//   auto [out, h_n, c_n] = lstm.forward(x);        // x [B, T, 128] -> out [B, T, 512], h_n/c_n [4, B, 256]
//   auto r = lstm.forward(x, {h0, c0}, lengths);   // lengths int64 [B]: no sorting, no packing
//
// Lengths follow Note [Variable lengths] (layers/run_cell.hpp).

#include <functional>
#include <string>
#include <vector>

#include "layers/recurrent_options.hpp"
#include "layers/run_cell.hpp"

namespace kiln::plugins {
struct Kernel;
struct KernelChoice;
}

namespace kiln::nn {


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
  /// The same for padded sequences, lengths int64 [B] (undefined: all full): outputs past a sequence's
  /// end are zeros and the last step is each sequence's own.
  Variable forward_padded(const Variable& input, const Variable& lengths);
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::string extra_repr() const override;
  const RecurrentOptions& options() const { return options_; }
  /// The cell of `layer` and direction (0 forward, 1 reverse); its parameters are this layer's
  /// weight_ih_l{layer}[_reverse] etc.
  const std::shared_ptr<RecurrentCell>& cell(std::int64_t layer, int direction = 0) const;
  /// Chooses the implementation for later forward calls.
  void set_impl(Impl impl) { options_.impl_ = impl; }
  /// Chooses the fused kernel forward runs (fusion/kernel_choice.hpp, Note [Kernel claims]), or null
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

/// A Recurrent layer of the registered cell `cell` (nn::CellRegistry): its factory, and its layer name in
/// summaries. Throws naming the registered cells when there is none of that name.
///   auto layer = nn::make_recurrent("cifg", nn::RecurrentOptions(32, 64).num_layers(2));
std::shared_ptr<Recurrent> make_recurrent(const std::string& cell, const RecurrentOptions& options);

}  // namespace kiln::nn

#pragma once
// The options of a recurrent layer (PyTorch's, plus Keras's conventions), which a cell factory also
// receives: what the cell registry (layers/cell_registry.hpp) and Recurrent (sequence/recurrent.hpp) share.

#include <functional>
#include <memory>
#include <optional>

#include "layers/impl.hpp"
#include "layers/rnn_cell.hpp"

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
  /// The forget gate's bias at initialisation (Jozefowicz et al., 2015; Keras's unit_forget_bias is 1):
  /// the rows of the gate the cell names "f" (RecurrentCell::gate_names) are set to `b` in bias_ih (or
  /// the single bias) and to 0 in bias_hh, so the gate starts open, sigmoid(b), and gradients flow
  /// far back from the first step. Refused, naming the cell, for a cell without a forget gate or biases.
  RecurrentOptions& forget_bias(double b) { forget_bias_ = b; return *this; }
  std::int64_t input_size_, hidden_size_;
  std::int64_t num_layers_ = 1;
  bool bias_ = true, batch_first_ = false, bidirectional_ = false;
  double dropout_ = 0;
  Nonlinearity nonlinearity_ = Nonlinearity::Tanh;
  bool reset_after_ = true;
  bool single_bias_ = false;
  bool return_sequences_ = true;
  Impl impl_ = Impl::Auto;
  std::optional<double> forget_bias_;
};
using RNNOptions = RecurrentOptions;
using LSTMOptions = RecurrentOptions;
using GRUOptions = RecurrentOptions;

/// Makes the cell for one layer and direction: (input_size, hidden_size, the layer's options).
using CellFactory = std::function<std::shared_ptr<RecurrentCell>(std::int64_t, std::int64_t, const RecurrentOptions&)>;

}  // namespace kiln::nn

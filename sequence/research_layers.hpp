#pragma once
// Layers of the research cells (layers/research_cells.hpp): Recurrent with a LayerNormLSTMCell,
// PeepholeLSTMCell or MGUCell, as RNN, LSTM and GRU are Recurrent with the built-in cells.

#include "layers/research_cells.hpp"
#include "sequence/recurrent.hpp"

namespace kiln::nn {

class LayerNormLSTM : public Recurrent {
 public:
  explicit LayerNormLSTM(RecurrentOptions options);
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
};

class PeepholeLSTM : public Recurrent {
 public:
  explicit PeepholeLSTM(RecurrentOptions options);
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
};

class MGU : public Recurrent {
 public:
  explicit MGU(RecurrentOptions options);
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
};

}  // namespace kiln::nn

#pragma once
// The model of an experiment and how a batch goes through it.
//
// A list of layers is a Sequential (batch-first) with every "auto" size resolved from the task and each
// layer checked against what reaches it; a mismatch is an error naming the layer's path in the file:
// "model[0].recurrent: the task gives token ids; start with an embedding". Padded batches (a task with
// lengths) reach recurrent layers, Transformer encoders and pooling with their lengths.
//
// `model: {seq2seq: {...}}` and `model: {transformer: {...}}` are whole encoder-decoder models
// (nn::Seq2Seq with optional Bahdanau or Luong attention, nn::TransformerSeq2Seq) for seq2seq tasks.

#include <memory>
#include <string>

#include "experiment/experiment.hpp"
#include "experiment/tasks.hpp"
#include "layers/module.hpp"
#include "seq2seq/search.hpp"

namespace kiln::experiment {

class Model {
 public:
  virtual ~Model() = default;
  /// The module that trains; its state_dict is the run's weights.
  virtual nn::Module& module() = 0;
  /// What the task's loss compares with b.y: [B, outputs] or [B, T, outputs].
  virtual Variable forward(const Batch& b) = 0;
  /// An encoder-decoder model's decoder for greedy and beam search; null otherwise.
  virtual nn::IncrementalDecoder* decoder() { return nullptr; }
  /// The Keras-style table (nn::summary), with output shapes from running batch b where it can.
  virtual std::string summary(const Batch& b) = 0;
};

std::unique_ptr<Model> build_model(const Experiment& e, const Task& task);

}  // namespace kiln::experiment

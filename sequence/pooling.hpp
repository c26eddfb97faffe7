#pragma once
// SequencePool: one vector per sequence from a batch-first sequence [B, T, F] -> [B, F], for
// classifying a sequence with layers that return every step (a Transformer encoder, a recurrent layer
// with return_sequences). With lengths, only each sequence's own steps count.
//
//   kiln::nn::SequencePool pool(kiln::nn::PoolMode::Mean);
//   Variable v = pool.forward(encoder_out, lengths);   // lengths int64 [B], each in [1, T]

#include "layers/module.hpp"

namespace kiln::nn {

enum class PoolMode {
  Last,  ///< the last step (each sequence's own with lengths)
  Mean,  ///< the mean over steps
  Max,   ///< the largest value of each feature over steps
};

class SequencePool : public Module {
 public:
  explicit SequencePool(PoolMode mode = PoolMode::Mean);
  void reset() override {}
  Variable forward(const Variable& x) override { return forward(x, Variable()); }
  /// x [B, T, F]; lengths int64 [B] or undefined (every sequence T long).
  Variable forward(const Variable& x, const Variable& lengths);
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::string extra_repr() const override;
  PoolMode mode() const { return mode_; }

 private:
  PoolMode mode_;
};

}  // namespace kiln::nn

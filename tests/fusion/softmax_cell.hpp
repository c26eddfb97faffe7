#pragma once
// A cell the step compiler does not take: a tanh RNN whose new state is the softmax of its row (a
// reduction over the row it does not know), for the tests of what a refusal says.

#include <memory>

#include "layers/rnn_cell.hpp"
#include "ops/ops.hpp"

namespace kiln::testing {

class SoftmaxRNNCell : public nn::RNNCell {
 public:
  using RNNCell::RNNCell;
  nn::State step(const Variable& x, const nn::State& s) override { return {softmax(RNNCell::step(x, s)[0], 1)}; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
};

inline std::shared_ptr<nn::RecurrentCell> softmax_rnn(std::int64_t in, std::int64_t hidden, bool bias = true) {
  return std::make_shared<SoftmaxRNNCell>(nn::RNNCellOptions(in, hidden).bias(bias));
}

}  // namespace kiln::testing

// Training end to end: the same seed gives a bit-identical loss curve, and a small LSTM learns.

#include <gtest/gtest.h>

#include "layers/linear.hpp"
#include "sequence/recurrent.hpp"
#include "layers/sequential.hpp"
#include "ops/ops.hpp"
#include "optim/optimizer.hpp"

namespace kiln {
namespace {

std::vector<double> loss_curve(std::uint64_t seed, int steps) {
  manual_seed(seed);
  nn::Sequential model({std::make_shared<nn::GRU>(nn::GRUOptions(3, 8).num_layers(2).dropout(0.2).return_sequences(false)),
                        std::make_shared<nn::Linear>(8, 1)});
  optim::AdamW opt(model.parameters());
  std::vector<double> curve;
  for (int i = 0; i < steps; ++i) {
    const Variable x(randn({6, 4, 3}));
    const Variable y(sum(x.value(), {0, 2}).value().reshape({4, 1}));
    opt.zero_grad();
    Variable loss = mse_loss(model.forward(x), y);
    loss.backward();
    optim::clip_grad_norm_(model.parameters(), 1.0);
    opt.step();
    curve.push_back(loss.item());
  }
  return curve;
}

TEST(Training, SameSeedGivesABitIdenticalLossCurve) {
  const auto a = loss_curve(42, 30), b = loss_curve(42, 30), c = loss_curve(43, 30);
  EXPECT_EQ(a, b);  // exact, not approximate
  EXPECT_NE(a, c);
}

TEST(Training, LstmLearnsToSumASequence) {
  manual_seed(1);
  nn::LSTM lstm(nn::LSTMOptions(1, 16).return_sequences(false));
  nn::Linear head(16, 1);
  std::vector<Variable> params = lstm.parameters();
  for (const auto& p : head.parameters()) params.push_back(p);
  optim::Adam opt(params, optim::AdamOptions(1e-2));
  double first = 0, last = 0;
  for (int i = 0; i < 300; ++i) {
    const Variable x(uniform({5, 16, 1}, -1, 1));
    const Variable y(sum(x.value(), {0, 2}).value().reshape({16, 1}));
    opt.zero_grad();
    Variable loss = mse_loss(head.forward(lstm.forward(x)), y);
    loss.backward();
    opt.step();
    if (i == 0) first = loss.item();
    last = loss.item();
  }
  EXPECT_LT(last, 0.05 * first) << "first " << first << " last " << last;
}

}  // namespace
}  // namespace kiln

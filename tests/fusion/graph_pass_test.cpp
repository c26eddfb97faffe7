#include <gtest/gtest.h>

#include <cmath>

#include "layers/init.hpp"
#include "sequence/recurrent.hpp"
#include "sequence/research_layers.hpp"
#include "ops/ops.hpp"
#include "fusion/graph_pass.hpp"
#include "fusion/kernel_choice.hpp"

namespace kiln::plugins {
namespace {

// A user's copy of the LSTM cell with its own parameter names. Order lists which chunk is which gate
// (i, f, g, o); {0, 1, 3, 2} is a different cell (the candidate and output gates swapped) with the same
// op graph up to which slice feeds what.
class UserLSTMCell : public nn::RecurrentCell {
 public:
  UserLSTMCell(std::int64_t in, std::int64_t hidden, std::array<int, 4> order = {0, 1, 2, 3})
      : RecurrentCell("UserLSTMCell", in, hidden), order_(order) {
    reset();
  }
  void reset() override {
    const std::int64_t H = hidden_size();
    W_ = register_parameter("W", nn::init::uniform({4 * H, input_size()}, -0.5, 0.5));
    U_ = register_parameter("U", nn::init::uniform({4 * H, H}, -0.5, 0.5));
    b_ = register_parameter("b_x", nn::init::uniform({4 * H}, -0.5, 0.5));
    c_ = register_parameter("b_h", nn::init::uniform({4 * H}, -0.5, 0.5));
  }
  nn::State step(const Variable& x, const nn::State& s) override {
    const auto g = chunk(linear(x, W_, b_) + linear(s[0], U_, c_), 4, 1);
    const Variable c = sigmoid(g[order_[1]]) * s[1] + sigmoid(g[order_[0]]) * tanh(g[order_[2]]);
    return {sigmoid(g[order_[3]]) * tanh(c), c};
  }
  std::size_t state_size() const override { return 2; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }

 private:
  std::array<int, 4> order_;
  Variable W_, U_, b_, c_;
};

// A user's own copy of the peephole LSTM: found by the graph pass, extra parameter and all.
class UserPeepholeCell : public nn::PeepholeLSTMCell {
 public:
  using PeepholeLSTMCell::PeepholeLSTMCell;
  nn::KernelClaim kernel_claim() const override { return {}; }  // claims nothing: the graph pass must find it
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
};

// Compiled kernels off for the rest of a scope: the claims and the graph pass alone (Note [Kernel claims] 1-3).
struct NoCompiledKernels {
  NoCompiledKernels() { plugins::set_compiled_kernels(false); }
  ~NoCompiledKernels() { plugins::set_compiled_kernels(true); }
};

TEST(GraphPass, FindsAKernelWithParametersBeyondTheGateWeights) {
  UserPeepholeCell cell(3, 5);
  const CellMatch m = match_cell(cell);
  ASSERT_NE(m.kernel, nullptr) << m.report;
  EXPECT_EQ(m.kernel->name, "peephole_lstm");
  EXPECT_EQ(m.params.at("weight_peephole"), "weight_peephole");
}

TEST(GraphPass, RecognisesAUsersCopyOfTheLSTMCell) {
  UserLSTMCell cell(3, 5);
  const CellMatch m = match_cell(cell);
  ASSERT_NE(m.kernel, nullptr) << m.report;
  EXPECT_EQ(m.kernel->name, "lstm");
  EXPECT_EQ(m.params, (ParamMap{{"weight_ih", "W"}, {"weight_hh", "U"}, {"bias_ih", "b_x"}, {"bias_hh", "b_h"}}));
  EXPECT_NE(m.report.find("UserLSTMCell's step (" + std::to_string(m.ops) + " ops) matched kernel 'lstm' from plugin 'builtin' "
                          "(parameters bias_hh <- b_h, bias_ih <- b_x, weight_hh <- U, weight_ih <- W)"),
            std::string::npos)
      << m.report;
}

TEST(GraphPass, ConfirmsNumericallyAndRefusesALookAlike) {
  UserLSTMCell swapped(3, 5, {0, 1, 3, 2});
  const CellMatch m = match_cell(swapped);
  EXPECT_EQ(m.kernel, nullptr);
  EXPECT_NE(m.report.find("structure matches kernel 'lstm' but output (float32) differs"), std::string::npos) << m.report;
  nn::LayerNormLSTMCell other_eps(3, 5, /*eps=*/1e-3);  // the layer-norm LSTM kernel's structure, not its numbers
  const CellMatch none = match_cell(other_eps);
  EXPECT_EQ(none.kernel, nullptr);
  EXPECT_NE(none.report.find("LayerNormLSTMCell's step"), std::string::npos);
  EXPECT_NE(none.report.find("matches no registered kernel"), std::string::npos) << none.report;
}

// The layer runs the user's cell on the fused kernel, and gives what the generic graph gives: outputs,
// final states and every gradient, with lengths, two layers and both directions, float64.
TEST(GraphPass, ALayerOfTheUsersCellRunsFusedWithTheSameResults) {
  NoCompiledKernels off;  // the reordered cell would run compiled
  for (std::array<int, 4> order : {std::array<int, 4>{0, 1, 2, 3}, std::array<int, 4>{0, 1, 3, 2}}) {
    manual_seed(1);
    auto factory = [order](std::int64_t in, std::int64_t h, const nn::RecurrentOptions&) {
      return std::make_shared<UserLSTMCell>(in, h, order);
    };
    nn::Recurrent layer("UserLSTM", nn::RecurrentOptions(3, 4).num_layers(2).bidirectional(true), factory);
    layer.to(kFloat64);
    const bool plain = order[2] == 2;
    EXPECT_EQ(layer.uses_fused(), plain) << layer.kernel_report();
    const Variable x(randn({5, 3, 3}, kFloat64));
    const Variable lengths(from_data(std::vector<std::int64_t>{5, 2, 0}, {3}));
    std::vector<std::vector<double>> runs;
    for (nn::Impl impl : {nn::Impl::Auto, nn::Impl::Generic}) {
      layer.set_impl(impl);
      layer.zero_grad();
      const auto r = layer.forward(x, {}, lengths);
      (sum(r.output * r.output) + sum(r.c_n)).backward();
      std::vector<double> v = r.output.value().to_vector();
      for (double d : r.h_n.value().to_vector()) v.push_back(d);
      for (const auto& [name, p] : layer.named_parameters())
        for (double d : p.grad().to_vector()) v.push_back(d);
      runs.push_back(v);
    }
    ASSERT_EQ(runs[0].size(), runs[1].size());
    for (std::size_t i = 0; i < runs[0].size(); ++i) ASSERT_NEAR(runs[0][i], runs[1][i], 1e-10) << i;
  }
}

}  // namespace
}  // namespace kiln::plugins

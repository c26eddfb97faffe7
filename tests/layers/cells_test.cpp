// Every cell: finite-difference checks of one step and of a 3-step run w.r.t. input, state and every
// parameter (float64).

#include <gtest/gtest.h>

#include "layers/gradcheck_module.hpp"
#include "layers/greff_cells.hpp"
#include "layers/research_cells.hpp"
#include "ops/ops.hpp"

namespace kiln::nn {
namespace {

using In = std::vector<Variable>;

struct CellCase {
  std::string name;
  std::function<std::shared_ptr<RecurrentCell>()> make;
};

void PrintTo(const CellCase& c, std::ostream* os) { *os << c.name; }

std::vector<CellCase> cells() {
  return {
      {"rnn_tanh", [] { return std::make_shared<RNNCell>(RNNCellOptions(3, 4)); }},
      {"rnn_relu", [] { return std::make_shared<RNNCell>(RNNCellOptions(3, 4).nonlinearity(Nonlinearity::ReLU)); }},
      {"rnn_no_bias", [] { return std::make_shared<RNNCell>(RNNCellOptions(3, 4).bias(false)); }},
      {"lstm", [] { return std::make_shared<LSTMCell>(LSTMCellOptions(3, 4)); }},
      {"gru_reset_after", [] { return std::make_shared<GRUCell>(GRUCellOptions(3, 4)); }},
      {"gru_reset_before", [] { return std::make_shared<GRUCell>(GRUCellOptions(3, 4).reset_after(false)); }},
      {"layer_norm_lstm", [] { return std::make_shared<LayerNormLSTMCell>(3, 4); }},
      {"peephole_lstm", [] { return std::make_shared<PeepholeLSTMCell>(3, 4); }},
      {"mgu", [] { return std::make_shared<MGUCell>(3, 4); }},
      {"mgu_no_bias", [] { return std::make_shared<MGUCell>(3, 4, false); }},
      {"gru_reset_before_no_bias", [] { return std::make_shared<GRUCell>(GRUCellOptions(3, 4).reset_after(false).bias(false)); }},
      {"lstm_nig", [] { return std::make_shared<GreffLSTMCell>(GreffVariant::NIG, 3, 4); }},
      {"lstm_nfg", [] { return std::make_shared<GreffLSTMCell>(GreffVariant::NFG, 3, 4); }},
      {"lstm_nog", [] { return std::make_shared<GreffLSTMCell>(GreffVariant::NOG, 3, 4); }},
      {"lstm_niaf", [] { return std::make_shared<GreffLSTMCell>(GreffVariant::NIAF, 3, 4); }},
      {"lstm_noaf", [] { return std::make_shared<GreffLSTMCell>(GreffVariant::NOAF, 3, 4); }},
      {"lstm_cifg", [] { return std::make_shared<GreffLSTMCell>(GreffVariant::CIFG, 3, 4); }},
      {"lstm_np", [] { return std::make_shared<GreffLSTMCell>(GreffVariant::NP, 3, 4); }},
      {"lstm_fgr", [] { return std::make_shared<GreffLSTMCell>(GreffVariant::FGR, 3, 4); }},
      {"lstm_cifg_no_bias", [] { return std::make_shared<GreffLSTMCell>(GreffVariant::CIFG, 3, 4, false); }},
  };
}

class Cells : public ::testing::TestWithParam<CellCase> {};

// x [steps, B, I] and the initial state; the output concatenates every step's h and the final state.
GradcheckResult check_steps(RecurrentCell& cell, int steps) {
  Generator g(11 + static_cast<std::uint64_t>(steps));
  In in{Variable(normal({steps, 2, cell.input_size()}, 0, 1, kFloat64, &g), true)};
  for (std::size_t i = 0; i < cell.state_size(); ++i) in.emplace_back(normal({2, cell.hidden_size()}, 0, 1, kFloat64, &g), true);
  return gradcheck_module(cell, in, [&cell, steps](const In& v) {
    State s(v.begin() + 1, v.end());
    std::vector<Variable> outs;
    for (int t = 0; t < steps; ++t) {
      s = cell.step(squeeze(narrow(v[0], 0, t, 1), 0), s);
      outs.push_back(s[0]);
    }
    for (std::size_t j = 1; j < s.size(); ++j) outs.push_back(s[j]);
    return concat(outs, 0);
  });
}

TEST_P(Cells, OneStepGradcheck) {
  auto cell = GetParam().make();
  const auto r = check_steps(*cell, 1);
  EXPECT_TRUE(r.ok) << GetParam().name << ": " << r.message;
  EXPECT_EQ(r.checked, 2 * cell->input_size() + static_cast<std::int64_t>(cell->state_size()) * 2 * cell->hidden_size() +
                           cell->num_parameters());
}

TEST_P(Cells, ThreeStepGradcheck) {
  auto cell = GetParam().make();
  const auto r = check_steps(*cell, 3);
  EXPECT_TRUE(r.ok) << GetParam().name << ": " << r.message;
}

TEST_P(Cells, StepChecksShapes) {
  auto cell = GetParam().make();
  EXPECT_THROW(cell->step(Variable(zeros({2, 5})), cell->zero_state(2, kFloat32)), Error);
  EXPECT_THROW(cell->step(Variable(zeros({2, 3})), cell->zero_state(3, kFloat32)), Error);
  EXPECT_THROW(cell->step(Variable(zeros({2, 3})), {}), Error);
  EXPECT_EQ(cell->forward(Variable(zeros({2, 3}))).shape(), (Shape{2, 4}));
}

INSTANTIATE_TEST_SUITE_P(Generic, Cells, ::testing::ValuesIn(cells()),
                         [](const ::testing::TestParamInfo<CellCase>& i) { return i.param.name; });

}  // namespace
}  // namespace kiln::nn

// Greff et al.'s LSTM variants: each one's parameters, and its step against the paper's equations
// computed element by element (their gradients: tests/layers/cells_test.cpp).

#include <cmath>

#include <gtest/gtest.h>

#include "layers/cell_registry.hpp"
#include "layers/greff_cells.hpp"
#include "ops/ops.hpp"

namespace kiln::nn {
namespace {

double sig(double v) { return 1 / (1 + std::exp(-v)); }

// The paper's equations for one row, from the cell's own parameters.
std::vector<std::vector<double>> reference(GreffLSTMCell& cell, const std::vector<double>& x, const std::vector<std::vector<double>>& state) {
  const auto P = cell.named_parameters();
  auto param = [&](const std::string& n) {
    for (const auto& [name, v] : P)
      if (name == n) return v.value().to_vector();
    return std::vector<double>();
  };
  const auto W = param("weight_ih"), R = param("weight_hh"), bi = param("bias_ih"), bh = param("bias_hh");
  const auto p = param("weight_peephole"), Rg = param("weight_gate_recurrence");
  const auto names = cell.gate_names();
  const std::size_t H = state[0].size(), I = x.size(), G = names.size();
  const GreffVariant v = cell.variant();
  std::vector<double> h(H), c(H), gi(H, 1), gf(H, 1), go(H, 1);
  for (std::size_t j = 0; j < H; ++j) {
    auto a = [&](const std::string& gate) {
      std::size_t k = 0;
      while (names[k] != gate) ++k;
      const std::size_t row = k * H + j;
      double s = bi[row] + bh[row];
      for (std::size_t q = 0; q < I; ++q) s += W[row * I + q] * x[q];
      for (std::size_t q = 0; q < H; ++q) s += R[row * H + q] * state[0][q];
      return s;
    };
    auto rec = [&](std::size_t g) {  // FGR: row g*H + j of R_g times [i f o]_{t-1}
      double s = 0;
      if (Rg.empty()) return s;
      for (std::size_t q = 0; q < 3 * H; ++q) s += Rg[(g * H + j) * 3 * H + q] * state[2 + q / H][q % H];
      return s;
    };
    std::size_t prow = 0;
    auto peep = [&](double cell_value) { return p.empty() ? 0.0 : p[(prow++) * H + j] * cell_value; };
    const double cp = state[1][j];
    if (v != GreffVariant::NIG) gi[j] = sig(a("i") + rec(0) + peep(cp));
    if (v == GreffVariant::CIFG) gf[j] = 1 - gi[j];
    else if (v != GreffVariant::NFG) gf[j] = sig(a("f") + rec(1) + peep(cp));
    const double z = v == GreffVariant::NIAF ? a("z") : std::tanh(a("z"));
    c[j] = gf[j] * cp + gi[j] * z;
    if (v != GreffVariant::NOG) go[j] = sig(a("o") + rec(2) + peep(c[j]));
    h[j] = go[j] * (v == GreffVariant::NOAF ? c[j] : std::tanh(c[j]));
  }
  if (v == GreffVariant::FGR) return {h, c, gi, gf, go};
  return {h, c};
}

TEST(GreffCells, EachVariantStepsAsThePaperWrites) {
  const std::int64_t I = 3, H = 4;
  Generator g(5);
  for (GreffVariant v : {GreffVariant::Vanilla, GreffVariant::NIG, GreffVariant::NFG, GreffVariant::NOG, GreffVariant::NIAF,
                         GreffVariant::NOAF, GreffVariant::CIFG, GreffVariant::NP, GreffVariant::FGR}) {
    GreffLSTMCell cell(v, I, H);
    cell.to(kFloat64);
    const Tensor x = normal({1, I}, 0, 1, kFloat64, &g);
    State s;
    std::vector<std::vector<double>> ref_state;
    for (std::size_t k = 0; k < cell.state_size(); ++k) {
      s.emplace_back(normal({1, H}, 0, 0.5, kFloat64, &g));
      ref_state.push_back(s.back().value().to_vector());
    }
    const State out = cell.step(Variable(x), s);
    const auto want = reference(cell, x.to_vector(), ref_state);
    ASSERT_EQ(out.size(), want.size()) << cell.extra_repr();
    for (std::size_t k = 0; k < want.size(); ++k) {
      const auto got = out[k].value().to_vector();
      for (std::size_t j = 0; j < want[k].size(); ++j) EXPECT_NEAR(got[j], want[k][j], 1e-12) << cell.extra_repr() << " state " << k;
    }
  }
}

TEST(GreffCells, AVariantHoldsOnlyTheParametersItUses) {
  const auto& r = CellRegistry::global();
  using Shapes = std::vector<std::pair<std::string, Shape>>;
  EXPECT_EQ(r.at("lstm_nig").parameter_shapes(3, 5),
            (Shapes{{"weight_ih", {15, 3}}, {"weight_hh", {15, 5}}, {"bias_ih", {15}}, {"bias_hh", {15}}, {"weight_peephole", {2, 5}}}));
  EXPECT_EQ(r.at("lstm_np").parameter_shapes(3, 5),
            (Shapes{{"weight_ih", {20, 3}}, {"weight_hh", {20, 5}}, {"bias_ih", {20}}, {"bias_hh", {20}}}));
  EXPECT_EQ(r.at("lstm_fgr").parameter_shapes(3, 5).back(), (std::pair<std::string, Shape>{"weight_gate_recurrence", {15, 15}}));
  EXPECT_EQ(r.at("lstm_fgr").states, 5u);
  EXPECT_EQ(r.at("lstm_cifg").gates, 3);
  for (const auto& v : greff_variants()) EXPECT_NO_THROW(r.at(v.name)) << v.name;
}

TEST(GreffCells, WithoutPeepholesTheVariantIsPyTorchsLSTM) {
  GreffLSTMCell np(GreffVariant::NP, 3, 4);
  LSTMCell lstm(LSTMCellOptions(3, 4));
  lstm.load_state_dict(np.state_dict());
  Generator g(1);
  const Variable x(normal({2, 3}, 0, 1, kFloat32, &g));
  const State s{Variable(normal({2, 4}, 0, 1, kFloat32, &g)), Variable(normal({2, 4}, 0, 1, kFloat32, &g))};
  const State a = np.step(x, s), b = lstm.step(x, s);
  EXPECT_EQ(a[0].value().to_vector(), b[0].value().to_vector());
  EXPECT_EQ(a[1].value().to_vector(), b[1].value().to_vector());
}

}  // namespace
}  // namespace kiln::nn

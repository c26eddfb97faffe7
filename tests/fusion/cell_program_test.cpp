// Note [Cell programs]: a compiled cell's step (its projections done by hand, its program run row by
// row) equals the generic step, outputs and every gradient; what cannot be compiled says why.

#include <gtest/gtest.h>

#include "fusion/cell_program.hpp"
#include "layers/cell_registry.hpp"
#include "ops/ops.hpp"
#include "tests/fusion/softmax_cell.hpp"

namespace kiln::plugins {
namespace {

using Matrix = std::vector<double>;

struct Parity {
  double worst = 0;
  std::string where;
  void check(const std::string& what, const std::vector<double>& got, const std::vector<double>& want) {
    ASSERT_EQ(got.size(), want.size()) << what;
    for (std::size_t k = 0; k < got.size(); ++k)
      if (std::abs(got[k] - want[k]) > worst) worst = std::abs(got[k] - want[k]), where = what;
  }
};

// One step of `name` (float64, batch 3): the compiled program against autograd on the generic step.
Parity compare(const std::string& name) {
  Parity result;
  const std::int64_t I = 3, H = 4, B = 3;
  manual_seed(2);
  auto cell = nn::CellRegistry::global().at(name).make(I, H, nn::RecurrentOptions(I, H));
  cell->to(kFloat64);
  const CellProgram p = compile_cell(*cell);
  EXPECT_TRUE(p.ok()) << name << ": " << p.stopped;
  if (!p.ok()) return result;
  Generator g(3);
  Variable x(normal({B, I}, 0, 1, kFloat64, &g), true);
  nn::State state;
  for (std::size_t s = 0; s < p.states; ++s) state.emplace_back(normal({B, H}, 0, 0.5, kFloat64, &g), true);
  std::vector<Tensor> w;  // the loss's weights on each next state
  for (std::size_t s = 0; s < p.states; ++s) w.push_back(normal({B, H}, 0, 1, kFloat64, &g));
  const nn::State next = cell->step(x, state);
  Variable loss;
  for (std::size_t s = 0; s < p.states; ++s) {
    const Variable term = sum(next[s] * Variable(w[s]));
    loss = loss.defined() ? loss + term : term;
  }
  loss.backward();
  std::map<std::string, Tensor> params;
  for (const auto& [n, v] : cell->named_parameters(false)) params[n] = v.value();
  auto source = [&](int s) { return (s < 0 ? x : state[static_cast<std::size_t>(s)]).value().to_vector(); };
  // Projections by hand.
  std::vector<Matrix> proj;
  std::vector<std::int64_t> ld;
  for (const Projection& pr : p.projections) {
    if (pr.source == Projection::kComputed) {  // made between stages, below
      proj.emplace_back(static_cast<std::size_t>(B * pr.rows));
      ld.push_back(pr.rows);
      continue;
    }
    const auto W = params.at(pr.weight).to_vector();
    const auto in = source(pr.source);
    const std::int64_t K = pr.source < 0 ? I : H;
    Matrix y(static_cast<std::size_t>(B * pr.rows));
    const auto b = pr.bias.empty() ? std::vector<double>() : params.at(pr.bias).to_vector();
    for (std::int64_t r = 0; r < B; ++r)
      for (std::int64_t j = 0; j < pr.rows; ++j) {
        double v = b.empty() ? 0 : b[static_cast<std::size_t>(pr.bias0 + j)];
        for (std::int64_t k = 0; k < K; ++k) v += in[static_cast<std::size_t>(r * K + k)] * W[static_cast<std::size_t>((pr.row0 + j) * K + k)];
        y[static_cast<std::size_t>(r * pr.rows + j)] = v;
      }
    proj.push_back(y);
    ld.push_back(pr.rows);
  }
  std::vector<const double*> proj_p, state_p, param_p;
  for (const auto& m : proj) proj_p.push_back(m.data());
  std::vector<Matrix> state_v, next_v(p.states, Matrix(static_cast<std::size_t>(B * H))), param_v;
  for (std::size_t s = 0; s < p.states; ++s) state_v.push_back(state[s].value().to_vector());
  for (const auto& s : state_v) state_p.push_back(s.data());
  for (const auto& n : p.params) param_v.push_back(params.at(n).to_vector());
  for (const auto& v : param_v) param_p.push_back(v.data());
  std::vector<double*> next_p;
  for (auto& n : next_v) next_p.push_back(n.data());
  Matrix shared(static_cast<std::size_t>(p.shared_size)), scratch(static_cast<std::size_t>(B * p.scratch_size)),
      saved(static_cast<std::size_t>(B * p.row_size));
  // A late projection by hand: y = v W^T + b for v, the source register's saved values.
  auto late_forward = [&](int stage, double*) {
    for (std::size_t k = 0; k < p.projections.size(); ++k) {
      const Projection& pr = p.projections[k];
      if (pr.source != Projection::kComputed || pr.stage != stage + 1) continue;
      const Register& src = p.regs[static_cast<std::size_t>(pr.source_reg)];
      const auto W = params.at(pr.weight).to_vector();
      const auto b = pr.bias.empty() ? std::vector<double>() : params.at(pr.bias).to_vector();
      for (std::int64_t r = 0; r < B; ++r)
        for (std::int64_t j = 0; j < pr.rows; ++j) {
          double v = b.empty() ? 0 : b[static_cast<std::size_t>(pr.bias0 + j)];
          for (std::int64_t q = 0; q < src.width; ++q)
            v += saved[static_cast<std::size_t>(r * p.row_size + src.offset + q)] * W[static_cast<std::size_t>((pr.row0 + j) * src.width + q)];
          proj[k][static_cast<std::size_t>(r * pr.rows + j)] = v;
        }
    }
  };
  run_program<double>(p, B, proj_p.data(), ld.data(), state_p.data(), param_p.data(), shared.data(), scratch.data(), saved.data(), next_p.data(),
                      late_forward);
  for (std::size_t s = 0; s < p.states; ++s) result.check(fmt::format("state{}'", s), next_v[s], next[s].value().to_vector());
  // Backward.
  std::vector<Matrix> dnext_v, dproj(proj.size()), dstate(p.states, Matrix(static_cast<std::size_t>(B * H))), dparam;
  for (const auto& t : w) dnext_v.push_back(t.to_vector());
  std::vector<const double*> dnext_p;
  for (const auto& d : dnext_v) dnext_p.push_back(d.data());
  std::vector<double*> dproj_p, dstate_p, dparam_p;
  for (std::size_t k = 0; k < proj.size(); ++k) dproj[k].resize(proj[k].size()), dproj_p.push_back(dproj[k].data());
  for (auto& d : dstate) dstate_p.push_back(d.data());
  for (const auto& v : param_v) dparam.emplace_back(v.size(), 0.0);
  for (auto& d : dparam) dparam_p.push_back(d.data());
  Matrix work(static_cast<std::size_t>(B * p.grad_size + p.shared_size));
  std::map<std::string, Matrix> dp;
  for (const auto& [n, t] : params) dp[n] = Matrix(static_cast<std::size_t>(t.numel()));
  auto late_backward = [&](int stage, double* grads) {
    for (std::size_t k = 0; k < p.projections.size(); ++k) {
      const Projection& pr = p.projections[k];
      if (pr.source != Projection::kComputed || pr.stage != stage + 1) continue;
      const Register& src = p.regs[static_cast<std::size_t>(pr.source_reg)];
      const auto W = params.at(pr.weight).to_vector();
      for (std::int64_t r = 0; r < B; ++r)
        for (std::int64_t j = 0; j < pr.rows; ++j) {
          const double d = dproj[k][static_cast<std::size_t>(r * pr.rows + j)];
          for (std::int64_t q = 0; q < src.width; ++q) {
            grads[r * p.grad_size + src.grad_offset + q] += d * W[static_cast<std::size_t>((pr.row0 + j) * src.width + q)];
            dp[pr.weight][static_cast<std::size_t>((pr.row0 + j) * src.width + q)] += d * saved[static_cast<std::size_t>(r * p.row_size + src.offset + q)];
          }
          if (!pr.bias.empty()) dp[pr.bias][static_cast<std::size_t>(pr.bias0 + j)] += d;
        }
    }
  };
  run_program_backward<double>(p, B, ld.data(), shared.data(), saved.data(), dnext_p.data(), dproj_p.data(), dstate_p.data(),
                               dparam_p.data(), work.data(), late_backward);
  // The projections' gradients become those of x, the states, the weights and the biases.
  Matrix dx(static_cast<std::size_t>(B * I));
  for (std::size_t k = 0; k < p.params.size(); ++k)
    for (std::size_t e = 0; e < dparam[k].size(); ++e) dp[p.params[k]][e] += dparam[k][e];
  for (std::size_t k = 0; k < p.projections.size(); ++k) {
    const Projection& pr = p.projections[k];
    if (pr.source == Projection::kComputed) continue;  // done between stages
    const std::int64_t K = pr.source < 0 ? I : H;
    const auto W = params.at(pr.weight).to_vector();
    const auto in = source(pr.source);
    Matrix& din = pr.source < 0 ? dx : dstate[static_cast<std::size_t>(pr.source)];
    for (std::int64_t r = 0; r < B; ++r)
      for (std::int64_t j = 0; j < pr.rows; ++j) {
        const double d = dproj[k][static_cast<std::size_t>(r * pr.rows + j)];
        for (std::int64_t q = 0; q < K; ++q) {
          din[static_cast<std::size_t>(r * K + q)] += d * W[static_cast<std::size_t>((pr.row0 + j) * K + q)];
          dp[pr.weight][static_cast<std::size_t>((pr.row0 + j) * K + q)] += d * in[static_cast<std::size_t>(r * K + q)];
        }
        if (!pr.bias.empty()) dp[pr.bias][static_cast<std::size_t>(pr.bias0 + j)] += d;
      }
  }
  result.check("grad x", dx, x.grad().to_vector());
  for (std::size_t s = 0; s < p.states; ++s) result.check(fmt::format("grad state{}", s), dstate[s], state[s].grad().to_vector());
  for (const auto& [n, v] : cell->named_parameters(false)) result.check("grad " + n, dp[n], v.grad().to_vector());
  return result;
}

class Compiles : public ::testing::TestWithParam<std::string> {};

TEST_P(Compiles, AndEqualsTheGenericStepWithEveryGradient) {
  const Parity r = compare(GetParam());
  EXPECT_LT(r.worst, 1e-12) << GetParam() << ": worst at " << r.where;
}

INSTANTIATE_TEST_SUITE_P(Cells, Compiles,
                         ::testing::Values("rnn_tanh", "rnn_relu", "lstm", "gru", "gru_reset_before", "peephole_lstm", "mgu", "lstm_nig",
                                           "lstm_nfg", "lstm_nog", "lstm_niaf", "lstm_noaf", "lstm_cifg", "lstm_np", "lstm_fgr",
                                           "layer_norm_lstm"));

TEST(CellProgram, SaysWhichOpStoppedIt) {
  const std::string stopped = compile_cell(*kiln::testing::softmax_rnn(3, 4)).stopped;
  EXPECT_NE(stopped.find("op 'softmax' (making [2, 4]) is not one the compiler knows"), std::string::npos) << stopped;
}

// layer_norm over a row compiles to Normalize (which keeps the row's 1 / std for backward) times its
// weight plus its bias; the layer-norm LSTM's three of them and what they keep, in the listing.
TEST(CellProgram, LayerNormIsANormalisationThenItsWeightAndBias) {
  auto cell = nn::CellRegistry::global().at("layer_norm_lstm").make(3, 4, nn::RecurrentOptions(3, 4));
  const CellProgram p = compile_cell(*cell);
  ASSERT_TRUE(p.ok()) << p.stopped;
  int normalize = 0;
  for (const Instr& i : p.code) {
    if (i.op != Opcode::Normalize) continue;
    ++normalize;
    EXPECT_DOUBLE_EQ(i.imm, 1e-5);
    EXPECT_EQ(p.regs[static_cast<std::size_t>(i.b)].width, 1);
    EXPECT_FALSE(p.regs[static_cast<std::size_t>(i.b)].scratch) << "backward reads the row's 1 / std";
    EXPECT_FALSE(p.regs[static_cast<std::size_t>(i.dst)].scratch) << "backward reads the normalised row";
  }
  EXPECT_EQ(normalize, 3);
  EXPECT_NE(p.listing().find("normalize"), std::string::npos) << p.listing();
}

// A projection of a value the step computes (MGU's W_hn (f h)) splits the program into stages with that
// GEMM between them.
TEST(CellProgram, ALateProjectionRunsBetweenStages) {
  auto cell = nn::CellRegistry::global().at("mgu").make(3, 4, nn::RecurrentOptions(3, 4));
  const CellProgram p = compile_cell(*cell);
  ASSERT_TRUE(p.ok()) << p.stopped;
  EXPECT_EQ(p.stages, 2);
  int late = 0;
  for (const Projection& pr : p.projections) late += pr.source == Projection::kComputed;
  EXPECT_EQ(late, 1);
  EXPECT_NE(p.listing().find("(stage 1)"), std::string::npos) << p.listing();
}

TEST(CellProgram, ChunkedGatesAreViewsAndTheListingShowsThem) {
  auto cell = nn::CellRegistry::global().at("lstm").make(3, 4, nn::RecurrentOptions(3, 4));
  const CellProgram p = compile_cell(*cell);
  ASSERT_TRUE(p.ok()) << p.stopped;
  EXPECT_EQ(p.projections.size(), 2u);  // x W_ih^T + b_ih and h W_hh^T + b_hh
  EXPECT_EQ(p.projections[0].source, -1);
  EXPECT_EQ(p.projections[1].source, 0);
  int slices = 0;
  for (const Instr& i : p.code) slices += i.op == Opcode::Slice;
  EXPECT_EQ(slices, 4);
  const std::string listing = p.listing();
  EXPECT_NE(listing.find("= sigmoid"), std::string::npos) << listing;
  EXPECT_NE(listing.find("state1' = r"), std::string::npos) << listing;
}

}  // namespace
}  // namespace kiln::plugins

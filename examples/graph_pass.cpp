// The graph pass on a cell that never asked for a fused kernel: a user's own LSTM cell, the textbook
// equations in generic ops with its own parameter names. Kiln traces its step, finds the fused LSTM's
// pattern in it (VF2 subgraph matching, operand order respected), confirms the match numerically, and
// the layer runs on the fused kernel, with the same results as the generic graph.
//
//   build/examples/graph_pass

#include <cmath>
#include <cstdio>

#include <CLI/CLI.hpp>
#include <kiln/kiln.hpp>
#include "layers/init.hpp"
#include "sequence/recurrent.hpp"
#include "fusion/graph_pass.hpp"

using kiln::Variable;
namespace nn = kiln::nn;

class MyLSTMCell : public nn::RecurrentCell {
 public:
  MyLSTMCell(std::int64_t in, std::int64_t hidden) : RecurrentCell("MyLSTMCell", in, hidden) { reset(); }
  void reset() override {
    const std::int64_t H = hidden_size();
    const double k = 1.0 / std::sqrt(static_cast<double>(H));
    W_ = register_parameter("W", nn::init::uniform({4 * H, input_size()}, -k, k));
    U_ = register_parameter("U", nn::init::uniform({4 * H, H}, -k, k));
    b_ = register_parameter("b_x", nn::init::uniform({4 * H}, -k, k));
    c_ = register_parameter("b_h", nn::init::uniform({4 * H}, -k, k));
  }
  // i, f, g, o = split(W x + b_x + U h + b_h); c' = s(f) c + s(i) tanh(g); h' = s(o) tanh(c')
  nn::State step(const Variable& x, const nn::State& s) override {
    const auto g = kiln::chunk(kiln::linear(x, W_, b_) + kiln::linear(s[0], U_, c_), 4, 1);
    const Variable c = kiln::sigmoid(g[1]) * s[1] + kiln::sigmoid(g[0]) * kiln::tanh(g[2]);
    return {kiln::sigmoid(g[3]) * kiln::tanh(c), c};
  }
  std::size_t state_size() const override { return 2; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }

 private:
  Variable W_, U_, b_, c_;
};

int main(int argc, char** argv) {
  CLI::App app{"The graph pass: a user's own LSTM cell, with its own parameter names, found and run on the fused LSTM kernel"};
  CLI11_PARSE(app, argc, argv);
  kiln::manual_seed(0);
  auto factory = [](std::int64_t in, std::int64_t h, const nn::RecurrentOptions&) { return std::make_shared<MyLSTMCell>(in, h); };
  nn::Recurrent fused("MyLSTM", nn::RecurrentOptions(16, 32).num_layers(2).bidirectional(true), factory);
  nn::Recurrent generic("MyLSTM", nn::RecurrentOptions(16, 32).num_layers(2).bidirectional(true).impl(nn::Impl::Generic), factory);
  generic.load_state_dict(fused.state_dict());

  std::printf("%s\n", fused.kernel_report().c_str());
  std::printf("fused layer runs: %s\n\n", fused.uses_fused() ? fused.choose_kernel()->name.c_str() : "the generic graph");

  const Variable x(kiln::randn({20, 8, 16}), true);
  double worst = 0;
  const auto a = fused.forward(x, {}), b = generic.forward(x, {});
  kiln::sum(a.output * a.output).backward();
  kiln::sum(b.output * b.output).backward();
  const auto fa = a.output.value().to_vector(), fb = b.output.value().to_vector();
  for (std::size_t i = 0; i < fa.size(); ++i) worst = std::max(worst, std::isnan(fa[i] - fb[i]) ? INFINITY : std::abs(fa[i] - fb[i]));
  double worst_grad = 0;
  const auto pf = fused.named_parameters(), pg = generic.named_parameters();
  for (std::size_t p = 0; p < pf.size(); ++p) {
    const auto ga = pf[p].second.grad().to_vector(), gb = pg[p].second.grad().to_vector();
    for (std::size_t i = 0; i < ga.size(); ++i) worst_grad = std::max(worst_grad, std::isnan(ga[i] - gb[i]) ? INFINITY : std::abs(ga[i] - gb[i]));
  }
  std::printf("fused vs generic graph: max |output difference| %.2e, max |gradient difference| %.2e over %zu parameters\n",
              worst, worst_grad, pf.size());
  return fused.uses_fused() && worst < 1e-4 && worst_grad < 1e-3 ? 0 : 1;
}

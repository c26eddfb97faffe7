// A researcher's new cell in generic ops, checked by gradcheck, then trained.
//
// The cell is the Minimal Gated Unit (Zhou et al., 2016): one forget gate instead of the GRU's two.
//   f  = sigmoid(W_f x + U_f h + b_f)
//   h~ = tanh(W_h x + U_h (f * h) + b_h)
//   h' = (1 - f) * h + f * h~
// Change a line, run this again: gradcheck tells whether the new variant's gradients can be trusted.
//
//   build/examples/custom_cell

#include <cmath>
#include <cstdio>

#include <CLI/CLI.hpp>
#include <kiln/kiln.hpp>
#include "optim/optimizer.hpp"

using kiln::Variable;

struct MinimalGatedUnit {
  Variable w_f, u_f, b_f, w_h, u_h, b_h;

  MinimalGatedUnit(int input, int hidden, kiln::DType dtype, kiln::Generator& gen) {
    const double k = 1.0 / std::sqrt(hidden);
    auto init = [&](kiln::Shape s) { return Variable(kiln::uniform(s, -k, k, dtype, &gen), true); };
    w_f = init({hidden, input}), u_f = init({hidden, hidden}), b_f = init({hidden});
    w_h = init({hidden, input}), u_h = init({hidden, hidden}), b_h = init({hidden});
  }

  explicit MinimalGatedUnit(const std::vector<Variable>& p)
      : w_f(p.at(0)), u_f(p.at(1)), b_f(p.at(2)), w_h(p.at(3)), u_h(p.at(4)), b_h(p.at(5)) {}

  Variable step(const Variable& x, const Variable& h) const {
    const Variable f = kiln::sigmoid(kiln::linear(x, w_f, b_f) + kiln::linear(h, u_f));
    const Variable candidate = kiln::tanh(kiln::linear(x, w_h, b_h) + kiln::linear(f * h, u_h));
    return (1.0 - f) * h + f * candidate;
  }

  std::vector<Variable> parameters() const { return {w_f, u_f, b_f, w_h, u_h, b_h}; }
};

int main(int argc, char** argv) {
  CLI::App app{"A new cell variant (the Minimal Gated Unit) in generic ops: gradient check, then training"};
  CLI11_PARSE(app, argc, argv);
  // 1. Gradient check of two steps, in float64, w.r.t. the input, the state and every parameter.
  kiln::Generator gen(0);
  const MinimalGatedUnit probe(3, 4, kiln::kFloat64, gen);
  std::vector<Variable> inputs{Variable(kiln::randn({2, 3}, kiln::kFloat64, &gen), true),
                               Variable(kiln::randn({2, 4}, kiln::kFloat64, &gen), true)};
  for (const Variable& p : probe.parameters()) inputs.push_back(p);
  const kiln::GradcheckResult check = kiln::gradcheck(
      [](const std::vector<Variable>& v) {
        const MinimalGatedUnit cell(std::vector<Variable>(v.begin() + 2, v.end()));
        return cell.step(v[0], cell.step(v[0], v[1]));
      },
      inputs);
  std::printf("%s\n", check.message.c_str());
  if (!check.ok) return 1;

  // 2. Train it, many-to-one: is the sum of 8 random numbers positive?
  kiln::manual_seed(1);
  MinimalGatedUnit cell(1, 16, kiln::kFloat32, kiln::default_generator());
  Variable w_out(kiln::uniform({1, 16}, -0.25, 0.25), true), b_out(kiln::zeros({1}), true);
  std::vector<Variable> params = cell.parameters();
  params.push_back(w_out);
  params.push_back(b_out);
  kiln::optim::SGD sgd(params, kiln::optim::SGDOptions(0.3));
  double first = 0, recent = 0;  // first loss, and the mean over the last 50 steps
  for (int step = 0; step < 400; ++step) {
    const kiln::Tensor x = kiln::randn({8, 32, 1});
    std::vector<float> y(32);
    for (int b = 0; b < 32; ++b) {
      float s = 0;
      for (int t = 0; t < 8; ++t) s += x.data<float>()[t * 32 + b];
      y[static_cast<std::size_t>(b)] = s > 0 ? 1.f : 0.f;
    }
    Variable h(kiln::zeros({32, 16}));
    for (int t = 0; t < 8; ++t) h = cell.step(kiln::squeeze(kiln::narrow(Variable(x), 0, t, 1), 0), h);
    Variable loss = kiln::binary_cross_entropy_with_logits(kiln::linear(h, w_out, b_out), Variable(kiln::from_data(y, {32, 1})));
    sgd.zero_grad();
    loss.backward();
    sgd.step();
    if (step == 0) first = loss.item();
    if (step >= 350) recent += loss.item() / 50;
    if (step % 50 == 0) std::printf("step %3d  loss %.4f\n", step, loss.item());
  }
  std::printf("loss %.4f at the start, %.4f averaged over the last 50 steps\n", first, recent);
  return recent < 0.5 * first ? 0 : 1;
}

// kiln demo: the main job for now. A tanh RNN written with generic ops learns the adding problem
// (Hochreiter & Schmidhuber, 1997) on the tape, the loss falls, and gradient checks show the
// gradients it trained with are right.

#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "autograd/grad_mode.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/graph.hpp"
#include "autograd/tape.hpp"
#include "cli/commands.hpp"
#include "ops/op_checks.hpp"
#include "ops/ops.hpp"
#include "optim/optimizer.hpp"

namespace kiln::cli {
namespace {

struct DemoArgs {
  int steps = 600;
  int seq_len = 10;
  int hidden = 32;
  int batch = 64;
  double lr = 0.01;
  std::uint64_t seed = 0;
  std::string dtype = "float32";
  std::string dot;
  bool skip_checks = false;
};

// The adding problem: x[t, b] = (value in [0, 1), marker); the target is the sum of the two marked
// values, one marker in each half of the sequence. Always answering 1 scores MSE 1/6.
void adding_batch(int seq_len, int batch, DType dtype, Generator& gen, Tensor& x, Tensor& y) {
  Tensor xd = zeros({seq_len, batch, 2}, kFloat64), yd = zeros({batch, 1}, kFloat64);
  double* xp = xd.data<double>();
  double* yp = yd.data<double>();
  const int half = seq_len / 2;
  for (int b = 0; b < batch; ++b) {
    for (int t = 0; t < seq_len; ++t) xp[(t * batch + b) * 2] = gen.next_double();
    const int first = static_cast<int>(gen.next_u64() % static_cast<std::uint64_t>(half));
    const int second = half + static_cast<int>(gen.next_u64() % static_cast<std::uint64_t>(seq_len - half));
    for (int t : {first, second}) {
      xp[(t * batch + b) * 2 + 1] = 1;
      yp[b] += xp[(t * batch + b) * 2];
    }
  }
  x = xd.to(dtype);
  y = yd.to(dtype);
}

// h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh): PyTorch's RNNCell, in generic ops.
Variable rnn_step(const Variable& x, const Variable& h, const std::vector<Variable>& p) {
  return tanh(linear(x, p[0], p[2]) + linear(h, p[1], p[3]));
}

struct TinyRnn {
  std::vector<Variable> params;  // W_ih, W_hh, b_ih, b_hh, W_out, b_out

  TinyRnn(int hidden, DType dtype, Generator& gen) {
    const double k = 1.0 / std::sqrt(hidden);  // PyTorch's default init
    for (Shape s : {Shape{hidden, 2}, Shape{hidden, hidden}, Shape{hidden}, Shape{hidden}, Shape{1, hidden}, Shape{1}})
      params.emplace_back(uniform(s, -k, k, dtype, &gen), true);
  }

  Variable forward(const Tensor& x) const {
    const std::int64_t steps = x.size(0), batch = x.size(1);
    Variable h(zeros({batch, params[1].size(0)}, x.dtype()));
    for (std::int64_t t = 0; t < steps; ++t) h = rnn_step(reshape(narrow(Variable(x), 0, t, 1), {batch, 2}), h, params);
    return linear(h, params[4], params[5]);
  }
};

int run(const DemoArgs& a) {
  KILN_CHECK(a.dtype == "float32" || a.dtype == "float64", "demo: --dtype must be float32 or float64, got '{}'", a.dtype);
  KILN_CHECK(a.seq_len >= 2 && a.batch >= 1 && a.hidden >= 1 && a.steps >= 0,
             "demo: need --seq-len >= 2 and positive --batch, --hidden; got {}, {}, {}", a.seq_len, a.batch, a.hidden);
  const DType dtype = a.dtype == "float32" ? kFloat32 : kFloat64;
  fmt::print("Kiln demo: a tanh RNN written with generic ops learns the adding problem (sequence length {})\n",
             a.seq_len);
  fmt::print("{}; {}; hidden {}, batch {}, Adam lr {}, seed {}\n\n", machine_line(), a.dtype, a.hidden, a.batch, a.lr,
             a.seed);
  Generator gen(a.seed);
  TinyRnn model(a.hidden, dtype, gen);
  optim::Adam adam(model.params, optim::AdamOptions(a.lr));
  Tensor x, y;
  fmt::print("{:>6}  {:>10}\n", "step", "train MSE");
  const auto start = std::chrono::steady_clock::now();
  double loss_value = 0, first_loss = 0;
  std::size_t records = 0;
  for (int step = 0; step <= a.steps; ++step) {
    adding_batch(a.seq_len, a.batch, dtype, gen, x, y);
    Variable loss = mse_loss(model.forward(x), Variable(y));
    records = Tape::current().live_records();
    if (step == 0 && !a.dot.empty()) write_dot(tape_graph(loss), a.dot);
    adam.zero_grad();
    loss.backward();
    adam.step();
    loss_value = loss.item();
    if (step == 0) first_loss = loss_value;
    if (step % std::max(1, a.steps / 10) == 0 || step == a.steps) fmt::print("{:>6}  {:>10.4f}\n", step, loss_value);
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  double test_mse;
  {
    NoGradGuard no_grad;
    adding_batch(a.seq_len, 2000, dtype, gen, x, y);
    test_mse = mse_loss(model.forward(x), Variable(y)).item();
  }
  fmt::print("\ntest MSE {:.4f} on 2000 fresh sequences (always answering 1 scores 0.1667); train MSE {:.4f} -> {:.4f}\n",
             test_mse, first_loss, loss_value);
  fmt::print("{:.2f} ms per training step, {} tape records per step, all freed by backward ({} left); "
             "{:.1f} KiB in live tensors\n", ms / (a.steps + 1), records, Tape::current().live_records(),
             memory_stats().allocated_bytes / 1024.0);
  if (!a.dot.empty()) fmt::print("graph of one step written to {}\n", a.dot);
  const bool learned = test_mse < 0.1667;
  if (!learned) fmt::print("the model did not beat the constant baseline: try more --steps\n");
  if (a.skip_checks) return learned ? 0 : 1;

  fmt::print("\nGradient checks (float64 central differences, rtol 1e-6)\n");
  int passed = 0;
  double worst = 0;
  for (const OpCheck& c : op_checks()) {
    const GradcheckResult r = run_op_check(c);
    passed += r.ok;
    worst = std::max(worst, std::isnan(r.max_abs_error) ? INFINITY : r.max_abs_error);
    if (!r.ok) fmt::print("  FAILED {}: {}\n", c.name, r.message);
  }
  fmt::print("  generic ops: {} of {} cases pass, worst |error| {:.1e}\n", passed, op_checks().size(), worst);
  bool cells_ok = true;
  for (int steps : {1, 3}) {
    Generator g(a.seed + 1);
    const int h = 5, b = 3;
    std::vector<Variable> in{Variable(normal({steps, b, 2}, 0, 1, kFloat64, &g), true),
                             Variable(normal({b, h}, 0, 1, kFloat64, &g), true)};
    for (Shape s : {Shape{h, 2}, Shape{h, h}, Shape{h}, Shape{h}}) in.emplace_back(normal(s, 0, 0.5, kFloat64, &g), true);
    const auto r = gradcheck([steps](const std::vector<Variable>& v) {
      Variable state = v[1];
      const std::vector<Variable> p(v.begin() + 2, v.end());
      for (int t = 0; t < steps; ++t) state = rnn_step(squeeze(narrow(v[0], 0, t, 1), 0), state, p);
      return state;
    }, in);
    cells_ok = cells_ok && r.ok;
    fmt::print("  RNN cell, {} step(s), w.r.t. x, h0 and 4 parameters: {}\n", steps, r.message);
  }
  return learned && passed == static_cast<int>(op_checks().size()) && cells_ok ? 0 : 1;
}

}  // namespace

void add_demo_command(CLI::App& app) {
  auto a = std::make_shared<DemoArgs>();
  CLI::App* cmd = app.add_subcommand("demo", "Train a small RNN with the tape and print gradient checks");
  cmd->add_option("--steps", a->steps, "Training steps")->capture_default_str();
  cmd->add_option("--seq-len", a->seq_len, "Sequence length of the adding problem")->capture_default_str();
  cmd->add_option("--hidden", a->hidden, "Hidden size")->capture_default_str();
  cmd->add_option("--batch", a->batch, "Batch size")->capture_default_str();
  cmd->add_option("--lr", a->lr, "Adam learning rate")->capture_default_str();
  cmd->add_option("--seed", a->seed, "Random seed (same seed, same numbers)")->capture_default_str()->check(seed_check());
  cmd->add_option("--dtype", a->dtype, "float32 or float64")->capture_default_str();
  cmd->add_option("--dot", a->dot, "Write the graph of one training step as Graphviz DOT");
  cmd->add_flag("--skip-checks", a->skip_checks, "Train only");
  cmd->callback([a] {
    if (const int rc = run(*a); rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace kiln::cli

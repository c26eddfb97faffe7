// The adding problem (Hochreiter & Schmidhuber, 1997): a sequence of (value, marker) pairs; the
// target is the sum of the two marked values, one in each half. Always answering 1 scores MSE 1/6.
// A tanh RNN cannot carry the first value across ~100 steps of vanishing gradients; LSTM and GRU can.
//
//   build/examples/adding_problem [--seq-len 100] [--steps 3000] [--cells lstm,gru,rnn]

#include <chrono>
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>

#include <kiln/kiln.hpp>

#include "example_options.hpp"
#include "layers/linear.hpp"
#include "sequence/recurrent.hpp"
#include "layers/cell_registry.hpp"
#include "layers/sequential.hpp"
#include "layers/summary.hpp"
#include "optim/optimizer.hpp"
#include "plugins/registry.hpp"

using kiln::Tensor;
using kiln::Variable;

// x [T, B, 2] time-major, y [B, 1].
void make_batch(int seq_len, int batch, kiln::Generator& gen, Tensor& x, Tensor& y) {
  x = kiln::zeros({seq_len, batch, 2});
  y = kiln::zeros({batch, 1});
  float* xp = x.data<float>();
  float* yp = y.data<float>();
  const int half = seq_len / 2;
  for (int b = 0; b < batch; ++b) {
    for (int t = 0; t < seq_len; ++t) xp[(t * batch + b) * 2] = static_cast<float>(gen.next_double());
    const int first = static_cast<int>(gen.next_u64() % static_cast<std::uint64_t>(half));
    const int second = half + static_cast<int>(gen.next_u64() % static_cast<std::uint64_t>(seq_len - half));
    for (int t : {first, second}) {
      xp[(t * batch + b) * 2 + 1] = 1;
      yp[b] += xp[(t * batch + b) * 2];
    }
  }
}

std::shared_ptr<kiln::nn::Module> make_model(const std::string& cell, int hidden, kiln::nn::Impl impl) {
  using namespace kiln::nn;
  auto opts = RecurrentOptions(2, hidden).return_sequences(false).impl(impl);
  // "rnn" is the tanh RNN; every other name is looked up in the cell registry (a --load library's too).
  const std::shared_ptr<Recurrent> rnn = make_recurrent(cell == "rnn" ? "rnn_tanh" : cell, opts);
  std::string why;
  std::printf("%s runs on %s\n", cell.c_str(), rnn->uses_fused(&why) ? ("fused kernel '" + rnn->choose_kernel()->name + "'").c_str()
                                                                       : ("the generic graph (" + why + ")").c_str());
  return std::make_shared<kiln::nn::Sequential>(
      std::vector<std::shared_ptr<kiln::nn::Module>>{rnn, std::make_shared<kiln::nn::Linear>(hidden, 1)});
}

int main(int argc, char** argv) {
  CLI::App app{"The adding problem: RNN against LSTM and GRU"};
  int seq_len = 100, steps = 4000, hidden = 64, batch = 64, every = 250;
  double lr = 2e-3;
  std::uint64_t seed = 0;
  std::vector<std::string> cells{"lstm", "gru", "rnn"};
  app.add_option("--seq-len", seq_len)->capture_default_str();
  app.add_option("--steps", steps)->capture_default_str();
  app.add_option("--hidden", hidden)->capture_default_str();
  app.add_option("--batch", batch)->capture_default_str();
  app.add_option("--lr", lr)->capture_default_str();
  app.add_option("--every", every, "Evaluate every N steps")->capture_default_str();
  app.add_option("--seed", seed)->capture_default_str()->check(kiln::examples::seed_check());
  std::string impl = "auto";
  std::vector<std::string> plugins;
  app.add_option("--cells", cells, "Registered cells (rnn: the tanh RNN); `kiln plugins` lists them")->delimiter(',');
  app.add_option("--impl", impl, "generic, fused or auto")->check(CLI::IsMember({"generic", "fused", "auto"}));
  app.add_option("--load", plugins, "Plugin libraries to load (e.g. the MGU kernel)")->check(CLI::ExistingFile);
  CLI11_PARSE(app, argc, argv);
  try {
    for (const auto& p : plugins) kiln::plugins::load_plugin(p);
    for (const auto& c : cells) kiln::nn::CellRegistry::global().at(c == "rnn" ? "rnn_tanh" : c);  // unknown: an error now
  } catch (const kiln::Error& e) {
    std::fprintf(stderr, "adding_problem: %s\n", e.what());
    return 2;
  }
  const auto choice = impl == "generic" ? kiln::nn::Impl::Generic : impl == "fused" ? kiln::nn::Impl::Fused : kiln::nn::Impl::Auto;

  kiln::Generator data(seed + 1000);
  Tensor test_x, test_y;
  make_batch(seq_len, 1000, data, test_x, test_y);
  std::vector<std::pair<std::string, double>> results;
  for (const std::string& cell : cells) {
    kiln::manual_seed(seed);
    auto model = make_model(cell, hidden, choice);
    if (cell == cells.front()) std::cout << kiln::nn::summary(*model, Variable(test_x)) << "\n";
    kiln::optim::Adam opt(model->parameters(), kiln::optim::AdamOptions(lr));
    kiln::Generator gen(seed);
    Tensor x, y;
    double test_mse = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int step = 1; step <= steps; ++step) {
      make_batch(seq_len, batch, gen, x, y);
      opt.zero_grad();
      Variable loss = kiln::mse_loss(model->forward(Variable(x)), Variable(y));
      loss.backward();
      kiln::optim::clip_grad_norm_(model->parameters(), 1.0);
      opt.step();
      if (step % every == 0 || step == steps) {
        kiln::NoGradGuard no_grad;
        test_mse = kiln::mse_loss(model->forward(Variable(test_x)), Variable(test_y)).item();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::printf("%-5s step %5d  train MSE %.4f  test MSE %.4f  (%.1f s)\n", cell.c_str(), step, loss.item(), test_mse, s);
        std::fflush(stdout);
      }
    }
    results.emplace_back(cell, test_mse);
  }
  std::printf("\nFinal test MSE at sequence length %d (always answering 1 scores 0.167):\n", seq_len);
  for (const auto& [cell, mse] : results) std::printf("  %-5s %.4f\n", cell.c_str(), mse);
  return 0;
}

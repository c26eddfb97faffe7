// Next-character prediction on real text: Debian's fortunes corpus (package fortunes-min), an LSTM
// language model, bits per character on held-out text, and samples at several temperatures.
//
//   build/examples/char_model [--steps 1500] [--corpus /usr/share/games/fortunes/fortunes ...]

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>

#include <CLI/CLI.hpp>

#include "io/atomic_file.hpp"
#include <kiln/kiln.hpp>

#include "example_options.hpp"
#include "layers/embedding.hpp"
#include "layers/linear.hpp"
#include "sequence/recurrent.hpp"
#include "layers/sequential.hpp"
#include "layers/summary.hpp"
#include "optim/optimizer.hpp"
#include "optim/scheduler.hpp"

using kiln::Tensor;
using kiln::Variable;
namespace nn = kiln::nn;

struct Corpus {
  std::string chars;            // id -> character
  std::map<char, std::int64_t> id;
  std::vector<std::int64_t> train, valid;
};

Corpus load(const std::vector<std::string>& paths) {
  std::string text;
  for (const auto& p : paths) {
    if (!std::filesystem::exists(p))
      throw kiln::Error(p + ": not found; install Debian's fortunes-min (apt-get install fortunes-min) or pass --corpus");
    for (char c : kiln::io::read_file(p)) text += c == '%' ? '\n' : c;  // '%' separates fortunes
  }
  Corpus c;
  for (unsigned char ch : text) c.chars += static_cast<char>(ch);
  std::sort(c.chars.begin(), c.chars.end());
  c.chars.erase(std::unique(c.chars.begin(), c.chars.end()), c.chars.end());
  for (std::size_t i = 0; i < c.chars.size(); ++i) c.id[c.chars[i]] = static_cast<std::int64_t>(i);
  const std::size_t split = text.size() * 9 / 10;
  for (std::size_t i = 0; i < text.size(); ++i) (i < split ? c.train : c.valid).push_back(c.id[text[i]]);
  return c;
}

// Windows of seq+1 characters: inputs ids[:, :-1], targets ids[:, 1:].
void windows(const std::vector<std::int64_t>& data, int batch, int seq, kiln::Generator& g, Tensor& x, Tensor& y) {
  x = kiln::empty({batch, seq}, kiln::kInt64);
  y = kiln::empty({batch * seq}, kiln::kInt64);
  for (int b = 0; b < batch; ++b) {
    const std::size_t at = g.next_u64() % (data.size() - static_cast<std::size_t>(seq) - 1);
    for (int t = 0; t < seq; ++t) {
      x.data<std::int64_t>()[b * seq + t] = data[at + static_cast<std::size_t>(t)];
      y.data<std::int64_t>()[b * seq + t] = data[at + static_cast<std::size_t>(t) + 1];
    }
  }
}

int main(int argc, char** argv) {
  CLI::App app{"Character-level LSTM language model on the fortunes corpus"};
  int steps = 1500, seq = 64, batch = 32, hidden = 128;
  double lr = 3e-3;
  std::uint64_t seed = 0;
  std::vector<std::string> corpus{"/usr/share/games/fortunes/fortunes", "/usr/share/games/fortunes/literature",
                                  "/usr/share/games/fortunes/riddles"};
  app.add_option("--steps", steps)->capture_default_str();
  app.add_option("--seq-len", seq)->capture_default_str();
  app.add_option("--hidden", hidden)->capture_default_str();
  app.add_option("--lr", lr)->capture_default_str();
  app.add_option("--seed", seed)->capture_default_str()->check(kiln::examples::seed_check());
  app.add_option("--corpus", corpus, "Text files")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    const Corpus c = load(corpus);
    std::printf("corpus: %zu training and %zu held-out characters, %zu distinct\n", c.train.size(), c.valid.size(),
                c.chars.size());
    kiln::manual_seed(seed);
    const auto V = static_cast<std::int64_t>(c.chars.size());
    kiln::Generator gen_for_summary(seed + 3);
    Tensor x, y;
    auto embed = std::make_shared<nn::Embedding>(V, 32);
    auto lstm = std::make_shared<nn::LSTM>(nn::LSTMOptions(32, hidden).batch_first(true));
    auto head = std::make_shared<nn::Linear>(hidden, V);
    nn::Sequential model({embed, lstm, head});
    windows(c.train, batch, seq, gen_for_summary, x, y);
    std::cout << nn::summary(model, Variable(x));
    const std::vector<Variable> params = model.parameters();
    auto logits = [&](const Tensor& in) { return kiln::reshape(model.forward(Variable(in)), {-1, V}); };
    kiln::optim::Adam opt(params, kiln::optim::AdamOptions(lr));
    kiln::optim::CosineAnnealingLR schedule(opt, steps, lr / 10);
    kiln::Generator gen(seed);
    const double to_bits = 1 / std::log(2.0);
    for (int step = 1; step <= steps; ++step) {
      windows(c.train, batch, seq, gen, x, y);
      opt.zero_grad();
      Variable loss = kiln::cross_entropy(logits(x), Variable(y));
      loss.backward();
      kiln::optim::clip_grad_norm_(params, 1.0);
      opt.step();
      schedule.step();
      if (step % 100 == 0 || step == steps) {
        std::printf("step %5d  train %.3f bits/char\n", step, loss.item() * to_bits);
        std::fflush(stdout);
      }
    }
    {
      kiln::NoGradGuard no_grad;
      kiln::Generator vgen(seed + 1);
      double total = 0;
      for (int i = 0; i < 10; ++i) {
        windows(c.valid, 32, seq, vgen, x, y);
        total += kiln::cross_entropy(logits(x), Variable(y)).item();
      }
      std::printf("held-out: %.3f bits/char (uniform over %lld characters: %.3f)\n", total / 10 * to_bits,
                  static_cast<long long>(V), std::log2(static_cast<double>(V)));
    }
    // Sampling, one character at a time through the layer's cell, at several temperatures.
    kiln::NoGradGuard no_grad;
    auto cell = lstm->cell(0);
    for (double temperature : {0.5, 1.0}) {
      kiln::Generator sgen(seed + 2);
      nn::State state = cell->zero_state(1, kiln::kFloat32);
      std::string text = "A ";
      for (char ch : text) state = cell->step(embed->forward(Variable(kiln::full({1}, static_cast<double>(c.id.at(ch)), kiln::kInt64))), state);
      for (int i = 0; i < 240; ++i) {
        const auto p = kiln::softmax(head->forward(state[0]) / temperature, 1).value().to_vector();
        double u = sgen.next_double();
        std::size_t k = 0;
        while (k + 1 < p.size() && (u -= p[k]) > 0) ++k;
        text += c.chars[k];
        state = cell->step(embed->forward(Variable(kiln::full({1}, static_cast<double>(k), kiln::kInt64))), state);
      }
      std::printf("\n--- sample at temperature %.1f ---\n%s\n", temperature, text.c_str());
    }
  } catch (const kiln::Error& e) {
    std::cerr << "char_model: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

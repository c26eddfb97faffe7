// Many-to-many tagging (NER-like) on generated sentences: every token gets a tag O, PER, LOC or ORG.
// Some names are ambiguous ("jordan", "washington", "georgia"): a person when followed by "said", a
// place when followed by "hosted". The cue comes after the word, so only a tagger that also reads
// right-to-left can get it; per-token accuracy and accuracy on the ambiguous tokens show it.
//
//   build/examples/tagging [--steps 500]

#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>

#include <kiln/kiln.hpp>

#include "example_options.hpp"
#include "experiment/sentences.hpp"
#include "layers/embedding.hpp"
#include "layers/linear.hpp"
#include "sequence/recurrent.hpp"
#include "layers/summary.hpp"
#include "optim/optimizer.hpp"

using kiln::Tensor;
using kiln::Variable;
namespace nn = kiln::nn;

using kiln::experiment::kTagNames;
using kiln::experiment::kTagWords;
constexpr std::int64_t kIgnore = -100;

struct Batch {
  Tensor ids, lengths, tags;  // tags [B * T], kIgnore past each sentence's end
  std::vector<bool> ambiguous;
};

Batch make_batch(int batch, int max_len, kiln::Generator& g) {
  Batch b{kiln::zeros({batch, max_len}, kiln::kInt64), kiln::zeros({batch}, kiln::kInt64),
          kiln::full({batch * max_len}, kIgnore, kiln::kInt64), std::vector<bool>(static_cast<std::size_t>(batch * max_len))};
  for (int i = 0; i < batch; ++i) {
    const auto words = kiln::experiment::tagged_sentence(g, max_len);
    b.lengths.data<std::int64_t>()[i] = static_cast<std::int64_t>(words.size());
    for (std::size_t t = 0; t < words.size(); ++t) {
      const std::size_t at = static_cast<std::size_t>(i * max_len) + t;
      b.ids.data<std::int64_t>()[at] = words[t].word;
      b.tags.data<std::int64_t>()[at] = words[t].tag;
      b.ambiguous[at] = words[t].ambiguous;
    }
  }
  return b;
}

class Tagger : public nn::Module {
 public:
  Tagger(bool bidirectional, int hidden) : Module(bidirectional ? "BiLSTMTagger" : "LSTMTagger"), bi_(bidirectional), hidden_(hidden) {
    reset();
  }
  void reset() override {
    embed = register_module("embed", std::make_shared<nn::Embedding>(nn::EmbeddingOptions(kTagWords.size(), 16).padding_idx(0)));
    lstm = register_module("lstm", std::make_shared<nn::LSTM>(nn::LSTMOptions(16, hidden_).batch_first(true).bidirectional(bi_)));
    head = register_module("head", std::make_shared<nn::Linear>(hidden_ * (bi_ ? 2 : 1), kTagNames.size()));
  }
  std::shared_ptr<nn::Module> clone() const override { return clone_as(*this); }
  std::shared_ptr<nn::Embedding> embed;
  std::shared_ptr<nn::LSTM> lstm;
  std::shared_ptr<nn::Linear> head;
  // Logits [B * T, tags].
  Variable forward(const Batch& b) const {
    const auto r = lstm->forward(embed->forward(Variable(b.ids)), {}, Variable(b.lengths));
    return kiln::reshape(head->forward(r.output), {-1, static_cast<std::int64_t>(kTagNames.size())});
  }

 private:
  bool bi_;
  int hidden_;
};

int main(int argc, char** argv) {
  CLI::App app{"Many-to-many tagging: BiLSTM against LSTM"};
  int steps = 500, max_len = 16, hidden = 32, batch = 32;
  std::uint64_t seed = 0;
  app.add_option("--steps", steps)->capture_default_str();
  app.add_option("--max-len", max_len)->capture_default_str()->check(CLI::Range(4, 64));
  app.add_option("--hidden", hidden)->capture_default_str();
  app.add_option("--seed", seed)->capture_default_str()->check(kiln::examples::seed_check());
  CLI11_PARSE(app, argc, argv);

  kiln::Generator test_gen(seed + 7);
  const Batch test = make_batch(500, max_len, test_gen);
  for (bool bi : {false, true}) {
    kiln::manual_seed(seed);
    Tagger m(bi, hidden);
    std::cout << m << "\n" << nn::summary(m);
    kiln::optim::Adam opt(m.parameters(), kiln::optim::AdamOptions(1e-2));
    kiln::Generator gen(seed);
    for (int step = 1; step <= steps; ++step) {
      const Batch b = make_batch(batch, max_len, gen);
      opt.zero_grad();
      Variable loss = kiln::cross_entropy(m.forward(b), Variable(b.tags), kIgnore);
      loss.backward();
      opt.step();
      if (step % 100 == 0 || step == steps) {
        kiln::NoGradGuard no_grad;
        const auto logits = m.forward(test).value().to_vector();
        const auto tags = test.tags.to_vector();
        int right = 0, total = 0, amb_right = 0, amb_total = 0;
        for (std::size_t t = 0; t < tags.size(); ++t) {
          if (tags[t] == kIgnore) continue;
          std::size_t best = 0;
          for (std::size_t c = 1; c < kTagNames.size(); ++c)
            if (logits[t * kTagNames.size() + c] > logits[t * kTagNames.size() + best]) best = c;
          const bool ok = static_cast<double>(best) == tags[t];
          right += ok;
          ++total;
          if (test.ambiguous[t]) amb_right += ok, ++amb_total;
        }
        std::printf("  step %4d  loss %.4f  per-token accuracy %.3f  on ambiguous names %.3f\n", step, loss.item(),
                    static_cast<double>(right) / total, static_cast<double>(amb_right) / std::max(amb_total, 1));
        std::fflush(stdout);
      }
    }
  }
  return 0;
}

// Date translation: dates written in many human formats ("3rd of March 2021", "Mar 3, 21",
// "03/03/2021", "Wednesday, March 3, 2021", ...) to ISO ("2021-03-03"), character by character. Trains
// a plain encoder-decoder, one with Bahdanau attention and a small Transformer on generated data,
// reports exact-match accuracy on dates never seen in training, and draws the attention of a few
// examples as SVG heatmaps.
//
//   build/examples/date_translation [--models plain,bahdanau,transformer] [--steps 2000] [--heatmaps DIR]

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>

#include <kiln/kiln.hpp>

#include "example_options.hpp"
#include "experiment/dates.hpp"
#include "layers/summary.hpp"
#include "optim/optimizer.hpp"
#include "seq2seq/transformer_seq2seq.hpp"
#include "svg_plots.hpp"

using kiln::Variable;
namespace nn = kiln::nn;

namespace {

// ---- Data -----------------------------------------------------------------------------------------

// Vocabularies: 0 pad, 1 BOS, 2 EOS; the source is printable ASCII, the target digits and '-'.
constexpr std::int64_t kPad = 0, kBos = 1, kEos = 2;
const std::string kTargetChars = "0123456789-";
std::int64_t src_id(char c) { return 3 + (c - 32); }
const std::int64_t kSrcVocab = 3 + 95, kTgtVocab = 3 + 11;
std::int64_t tgt_id(char c) { return 3 + static_cast<std::int64_t>(kTargetChars.find(c)); }
char tgt_char(std::int64_t id) { return id >= 3 && id < kTgtVocab ? kTargetChars[static_cast<std::size_t>(id - 3)] : '?'; }

struct Batch {
  std::vector<std::string> text, answer;
  Variable src, lengths, tgt_in, tgt_out;
};

Batch make_batch(int n, kiln::Generator& g, bool test) {
  Batch b;
  for (int i = 0; i < n; ++i) {
    const kiln::experiment::Date t = kiln::experiment::random_date(g, test);
    b.text.push_back(kiln::experiment::render(t, g));
    b.answer.push_back(kiln::experiment::iso(t));
  }
  std::size_t len = 0;
  for (const auto& s : b.text) len = std::max(len, s.size());
  std::vector<std::int64_t> src, lengths, tin, tout;
  for (int i = 0; i < n; ++i) {
    const std::string& s = b.text[static_cast<std::size_t>(i)];
    for (std::size_t k = 0; k < len; ++k) src.push_back(k < s.size() ? src_id(s[k]) : kPad);
    lengths.push_back(static_cast<std::int64_t>(s.size()));
    tin.push_back(kBos);
    for (char c : b.answer[static_cast<std::size_t>(i)]) tin.push_back(tgt_id(c)), tout.push_back(tgt_id(c));
    tout.push_back(kEos);  // tgt_in = BOS + the 10 characters, tgt_out = the 10 characters + EOS
  }
  const std::int64_t rows = n, out_len = 11;
  b.src = Variable(kiln::from_data(src, {rows, static_cast<std::int64_t>(len)}));
  b.lengths = Variable(kiln::from_data(lengths));
  b.tgt_in = Variable(kiln::from_data(tin, {rows, out_len}));
  b.tgt_out = Variable(kiln::from_data(tout, {rows, out_len}));
  return b;
}

std::string decode(const std::vector<std::int64_t>& ids) {
  std::string s;
  for (auto id : ids) s += tgt_char(id);
  return s;
}

// ---- Models ---------------------------------------------------------------------------------------

struct Model {
  std::string name;
  std::shared_ptr<nn::Module> module;
  nn::IncrementalDecoder* decoder;
  std::function<nn::Seq2SeqOutput(const Batch&)> forward;
  std::function<Variable(const nn::Seq2SeqOutput&, const Batch&)> loss;
};

Model make_model(const std::string& name, int hidden) {
  if (name == "transformer") {
    auto m = std::make_shared<nn::TransformerSeq2Seq>(nn::TransformerSeq2SeqOptions(kSrcVocab, kTgtVocab)
                                                          .d_model(hidden).nhead(4).num_encoder_layers(2)
                                                          .num_decoder_layers(2).dim_feedforward(2 * hidden)
                                                          .dropout(0.1).max_len(64));
    return {name, m, m.get(), [m](const Batch& b) { return m->forward(b.src, b.lengths, b.tgt_in); },
            [m](const nn::Seq2SeqOutput& o, const Batch& b) { return m->loss(o, b.tgt_out); }};
  }
  auto opts = nn::Seq2SeqOptions(kSrcVocab, kTgtVocab).embedding_dim(32).hidden_size(hidden).cell(nn::CellType::GRU);
  if (name == "bahdanau") opts.attention(nn::Seq2SeqAttention::Bahdanau).bidirectional_encoder(true);
  auto m = std::make_shared<nn::Seq2Seq>(opts);
  return {name, m, m.get(), [m](const Batch& b) { return m->forward(b.src, b.lengths, b.tgt_in); },
          [m](const nn::Seq2SeqOutput& o, const Batch& b) { return m->loss(o, b.tgt_out); }};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Date translation: human-written dates to ISO with seq2seq, attention and a Transformer"};
  int steps = 2000, batch = 64, every = 250, hidden = 64, test_size = 1000, beam = 1;
  double lr = 3e-3;
  std::uint64_t seed = 0;
  std::vector<std::string> models{"plain", "bahdanau", "transformer"};
  std::string heatmaps;
  app.add_option("--models", models)->delimiter(',')->check(CLI::IsMember({"plain", "bahdanau", "transformer"}));
  app.add_option("--steps", steps)->capture_default_str();
  app.add_option("--batch", batch)->capture_default_str();
  app.add_option("--hidden", hidden, "Hidden size (d_model for the Transformer)")->capture_default_str();
  app.add_option("--lr", lr)->capture_default_str();
  app.add_option("--every", every, "Report every N steps")->capture_default_str();
  app.add_option("--test-size", test_size)->capture_default_str();
  app.add_option("--beam", beam, "Beam width for decoding (1: greedy)")->capture_default_str();
  app.add_option("--seed", seed)->capture_default_str()->check(kiln::examples::seed_check());
  app.add_option("--heatmaps", heatmaps, "Write attention heatmaps (SVG) of 3 test dates to this folder");
  CLI11_PARSE(app, argc, argv);

  kiln::Generator show(seed + 7);
  std::printf("Examples of the generated data:\n");
  const Batch sample = make_batch(6, show, false);
  for (std::size_t i = 0; i < sample.text.size(); ++i)
    std::printf("  %-28s -> %s\n", sample.text[i].c_str(), sample.answer[i].c_str());
  kiln::Generator test_gen(seed + 1000);
  const Batch test = make_batch(test_size, test_gen, true);
  std::printf("Test set: %d dates held out of training\n\n", test_size);

  std::vector<std::pair<std::string, double>> results;
  for (const std::string& name : models) {
    kiln::manual_seed(seed);
    Model model = make_model(name, hidden);
    std::cout << nn::summary(*model.module) << "\n";
    kiln::optim::Adam opt(model.module->parameters(), kiln::optim::AdamOptions(name == "transformer" ? lr / 3 : lr));
    kiln::Generator gen(seed);
    const auto start = std::chrono::steady_clock::now();
    auto accuracy = [&](std::vector<nn::Hypothesis>* out) {
      model.module->eval();
      const auto opts = nn::SearchOptions(kBos, kEos).max_len(12).beam_width(beam);
      const auto best = beam > 1 ? nn::beam_search(*model.decoder, test.src, test.lengths, opts)
                                 : nn::greedy_search(*model.decoder, test.src, test.lengths, opts);
      model.module->train();
      int right = 0;
      for (std::size_t i = 0; i < best.size(); ++i) right += decode(best[i].tokens) == test.answer[i];
      if (out != nullptr) *out = best;
      return right / static_cast<double>(best.size());
    };
    for (int step = 1; step <= steps; ++step) {
      const Batch b = make_batch(batch, gen, false);
      opt.zero_grad();
      Variable loss = model.loss(model.forward(b), b);
      loss.backward();
      kiln::optim::clip_grad_norm_(model.module->parameters(), 1.0);
      opt.step();
      if (step % every == 0 || step == steps) {
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::printf("%-11s step %5d  loss %.4f  (%.1f s)\n", name.c_str(), step, loss.item(), s);
        std::fflush(stdout);
      }
    }
    std::vector<nn::Hypothesis> best;
    const double acc = accuracy(&best);
    std::printf("%-11s exact match on held-out dates: %.1f%%\n", name.c_str(), 100 * acc);
    for (int i = 0; i < 4; ++i)
      std::printf("  %-28s -> %-10s %s\n", test.text[static_cast<std::size_t>(i)].c_str(),
                  decode(best[static_cast<std::size_t>(i)].tokens).c_str(),
                  decode(best[static_cast<std::size_t>(i)].tokens) == test.answer[static_cast<std::size_t>(i)] ? "" : "(wrong)");
    std::printf("\n");
    results.emplace_back(name, acc);
    if (!heatmaps.empty() && name != "plain") {
      std::filesystem::create_directories(heatmaps);
      for (int i = 0; i < 3; ++i) {
        const auto& h = best[static_cast<std::size_t>(i)];
        const std::string& text = test.text[static_cast<std::size_t>(i)];
        std::vector<std::vector<double>> w;
        std::vector<std::string> rows, cols;
        for (char c : text) cols.emplace_back(1, c);
        for (std::size_t t = 0; t < h.attention.size(); ++t) {
          w.emplace_back(h.attention[t].begin(), h.attention[t].begin() + static_cast<std::ptrdiff_t>(text.size()));
          rows.push_back(t < h.tokens.size() ? std::string(1, tgt_char(h.tokens[t])) : "</s>");
        }
        const std::string path = fmt::format("{}/{}_{}.svg", heatmaps, name, i);
        svg::heatmap(path, w, rows, cols, fmt::format("{}: \"{}\" -> {}", name, text, decode(h.tokens)));
        std::printf("attention heatmap written to %s\n", path.c_str());
      }
      std::printf("\n");
    }
  }
  std::printf("Exact match on %d held-out dates:\n", test_size);
  for (const auto& [name, acc] : results) std::printf("  %-11s %.1f%%\n", name.c_str(), 100 * acc);
  return 0;
}

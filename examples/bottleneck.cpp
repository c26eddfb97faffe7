// The bottleneck, measured: an encoder-decoder without attention must squeeze the whole input into one
// context vector; with attention the decoder looks back at every input position. Both are trained to
// copy (or reverse) random digit strings of length 1..max-len; accuracy is then measured at each length
// and printed as a table and drawn as a line chart (SVG).
//
//   build/examples/bottleneck [--task copy|reverse] [--max-len 40] [--lengths 5,10,20,30,40] [--plot bottleneck.svg]

#include <chrono>
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>

#include <kiln/kiln.hpp>

#include "example_options.hpp"
#include "layers/summary.hpp"
#include "optim/optimizer.hpp"
#include "seq2seq/rnn_seq2seq.hpp"
#include "svg_plots.hpp"

using kiln::Variable;
namespace nn = kiln::nn;

namespace {

constexpr std::int64_t kBos = 1, kEos = 2, kDigits = 10, kVocab = 3 + kDigits;

struct Batch {
  std::vector<std::vector<std::int64_t>> src, answer;
  Variable src_ids, lengths, tgt_in, tgt_out;
};

// n sequences with lengths from `length` (fixed) or uniform in [1, max_len] (length 0).
Batch make_batch(int n, int length, int max_len, bool reverse, kiln::Generator& g) {
  Batch b;
  std::size_t longest = 0;
  for (int i = 0; i < n; ++i) {
    const int len = length > 0 ? length : 1 + static_cast<int>(g.next_u64() % static_cast<std::uint64_t>(max_len));
    std::vector<std::int64_t> s;
    for (int t = 0; t < len; ++t) s.push_back(3 + static_cast<std::int64_t>(g.next_u64() % kDigits));
    b.answer.emplace_back(reverse ? std::vector<std::int64_t>(s.rbegin(), s.rend()) : s);
    b.src.push_back(std::move(s));
    longest = std::max(longest, b.src.back().size());
  }
  const auto rows = static_cast<std::int64_t>(n), cols = static_cast<std::int64_t>(longest);
  std::vector<std::int64_t> src, lengths, tin, tout;
  for (int i = 0; i < n; ++i) {
    const auto& s = b.src[static_cast<std::size_t>(i)];
    const auto& a = b.answer[static_cast<std::size_t>(i)];
    lengths.push_back(static_cast<std::int64_t>(s.size()));
    for (std::size_t t = 0; t < longest; ++t) src.push_back(t < s.size() ? s[t] : 0);
    tin.push_back(kBos);
    for (std::size_t t = 0; t < longest; ++t) tin.push_back(t < a.size() ? a[t] : 0);
    for (std::size_t t = 0; t <= longest; ++t) tout.push_back(t < a.size() ? a[t] : t == a.size() ? kEos : 0);
  }
  b.src_ids = Variable(kiln::from_data(src, {rows, cols}));
  b.lengths = Variable(kiln::from_data(lengths));
  b.tgt_in = Variable(kiln::from_data(tin, {rows, cols + 1}));
  b.tgt_out = Variable(kiln::from_data(tout, {rows, cols + 1}));
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"The context-vector bottleneck: encoder-decoder accuracy against input length, with and without attention"};
  int steps = 3000, batch = 32, hidden = 64, max_len = 40, every = 500, test_size = 200;
  double lr = 3e-3;
  std::uint64_t seed = 0;
  std::string task = "copy", plot = "bottleneck.svg", cell = "gru";
  std::vector<int> lengths{5, 10, 15, 20, 25, 30, 35, 40};
  app.add_option("--task", task)->check(CLI::IsMember({"copy", "reverse"}))->capture_default_str();
  app.add_option("--cell", cell, "A registered cell (rnn: the tanh RNN); `kiln plugins` lists them")->capture_default_str();
  app.add_option("--steps", steps)->capture_default_str();
  app.add_option("--batch", batch)->capture_default_str();
  app.add_option("--hidden", hidden)->capture_default_str();
  app.add_option("--max-len", max_len, "Train on lengths 1..max-len")->capture_default_str();
  app.add_option("--lengths", lengths, "Lengths to measure")->delimiter(',');
  app.add_option("--lr", lr)->capture_default_str();
  app.add_option("--every", every)->capture_default_str();
  app.add_option("--test-size", test_size, "Test sequences per length")->capture_default_str();
  app.add_option("--seed", seed)->capture_default_str()->check(kiln::examples::seed_check());
  app.add_option("--plot", plot, "Where to write the chart (SVG; empty: none)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  const bool reverse = task == "reverse";

  struct Row {
    std::string name;
    std::vector<double> token_acc, exact;
  };
  std::vector<Row> rows;
  for (const auto attention : {nn::Seq2SeqAttention::None, nn::Seq2SeqAttention::Bahdanau}) {
    const std::string name = attention == nn::Seq2SeqAttention::None ? "no attention" : "Bahdanau attention";
    kiln::manual_seed(seed);
    nn::Seq2Seq model(nn::Seq2SeqOptions(kVocab, kVocab).embedding_dim(16).hidden_size(hidden)
                          .cell(cell == "rnn" ? "rnn_tanh" : cell).attention(attention));
    std::cout << nn::summary(model) << "\n";
    kiln::optim::Adam opt(model.parameters(), kiln::optim::AdamOptions(lr));
    kiln::Generator gen(seed);
    const auto start = std::chrono::steady_clock::now();
    for (int step = 1; step <= steps; ++step) {
      const Batch b = make_batch(batch, 0, max_len, reverse, gen);
      opt.zero_grad();
      Variable loss = model.loss(model.forward(b.src_ids, b.lengths, b.tgt_in), b.tgt_out);
      loss.backward();
      kiln::optim::clip_grad_norm_(model.parameters(), 1.0);
      opt.step();
      if (step % every == 0 || step == steps) {
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::printf("%-18s step %5d  loss %.4f  (%.1f s)\n", name.c_str(), step, loss.item(), s);
        std::fflush(stdout);
      }
    }
    model.eval();
    Row row{name, {}, {}};
    kiln::Generator test_gen(seed + 1000);
    for (int len : lengths) {
      const Batch t = make_batch(test_size, len, max_len, reverse, test_gen);
      const auto best = nn::greedy_search(model, t.src_ids, t.lengths,
                                          nn::SearchOptions(kBos, kEos).max_len(len + 5).keep_attention(false));
      double tokens = 0, exact = 0;
      for (std::size_t i = 0; i < best.size(); ++i) {
        const auto& want = t.answer[i];
        const auto& got = best[i].tokens;
        for (std::size_t k = 0; k < want.size(); ++k) tokens += k < got.size() && got[k] == want[k];
        exact += got == want;
      }
      row.token_acc.push_back(tokens / (static_cast<double>(len) * test_size));
      row.exact.push_back(exact / test_size);
    }
    rows.push_back(row);
    std::printf("\n");
  }

  std::printf("Task: %s digit strings, trained on lengths 1..%d, %d test strings per length (greedy decoding)\n\n",
              task.c_str(), max_len, test_size);
  std::printf("%-8s", "");
  for (const auto& r : rows) std::printf(" | %-22s", r.name.c_str());
  std::printf("\n%-8s", "length");
  for (std::size_t k = 0; k < rows.size(); ++k) std::printf(" | %-9s %-12s", "tokens", "exact match");
  std::printf("\n");
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    std::printf("%-8d", lengths[i]);
    for (const auto& r : rows) std::printf(" | %5.1f%%    %5.1f%%      ", 100 * r.token_acc[i], 100 * r.exact[i]);
    std::printf("\n");
  }
  if (!plot.empty()) {
    std::vector<double> x(lengths.begin(), lengths.end());
    std::vector<svg::Series> series;
    for (const auto& r : rows) series.push_back({r.name, r.token_acc});
    svg::line_chart(plot, x, series, fmt::format("Token accuracy against input length ({} task)", task),
                    "input length", "token accuracy");
    std::printf("\nChart written to %s\n", plot.c_str());
  }
  return 0;
}

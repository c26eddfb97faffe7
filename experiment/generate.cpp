// Generation from a run (`kiln generate RUN`): sampling text from a language model, translating with a
// seq2seq model by greedy or beam search (experiment/trainer.hpp, generate_text).

#include <algorithm>
#include <cctype>
#include <cmath>

#include <fmt/format.h>

#include "autograd/grad_mode.hpp"
#include "experiment/run.hpp"
#include "experiment/trainer.hpp"
#include "tensor/error.hpp"

namespace kiln::experiment {

namespace {

// Lines "source -> output" of a seq2seq run's greedy or beam search: o.inputs, else the first evaluation batch.
std::string translate(Run& run, const GenerateOptions& o) {
  KILN_CHECK(o.beam >= 1 && o.beam <= 1000, "generate: --beam must be 1 to 1000, got {}", o.beam);
  KILN_CHECK(std::isfinite(o.length_penalty) && o.length_penalty >= 0, "generate: --length-penalty must be a number >= 0, got {}",
             o.length_penalty);
  std::vector<std::vector<std::int64_t>> sources;
  std::vector<std::string> shown;
  for (const std::string& text : o.inputs) {
    KILN_CHECK(!text.empty() && static_cast<std::int64_t>(text.size()) <= run.task->steps() * 4,
               "generate: --input '{}' must be 1 to {} characters", text.substr(0, 60), run.task->steps() * 4);
    sources.push_back(run.task->encode(text));
    shown.push_back(text);
  }
  if (sources.empty()) {
    const Batch b = run.task->eval_batch(0);
    const std::int64_t n = std::min<std::int64_t>(b.x.size(0), 8), S = b.x.size(1);
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t* row = b.x.data<std::int64_t>() + i * S;
      sources.emplace_back(row, row + b.lengths.data<std::int64_t>()[i]);
      shown.push_back(run.task->decode_input(sources.back()));
    }
  }
  std::size_t S = 1;
  for (const auto& src : sources) S = std::max(S, src.size());
  const auto B = static_cast<std::int64_t>(sources.size());
  Tensor x = zeros({B, static_cast<std::int64_t>(S)}, kInt64), lengths = zeros({B}, kInt64);
  for (std::int64_t i = 0; i < B; ++i) {
    const auto& src = sources[static_cast<std::size_t>(i)];
    std::copy(src.begin(), src.end(), x.data<std::int64_t>() + i * static_cast<std::int64_t>(S));
    lengths.data<std::int64_t>()[i] = static_cast<std::int64_t>(src.size());
  }
  const auto opts = nn::SearchOptions(kBosId, kEosId).max_len(run.task->max_target_length()).beam_width(o.beam)
                        .length_penalty(o.length_penalty).keep_attention(false);
  const auto best = o.beam > 1 ? nn::beam_search(*run.model->decoder(), Variable(x), Variable(lengths), opts)
                               : nn::greedy_search(*run.model->decoder(), Variable(x), Variable(lengths), opts);
  std::size_t width = 0;
  for (const auto& t : shown) width = std::max(width, t.size());
  std::string out;
  for (std::size_t i = 0; i < best.size(); ++i) out += fmt::format("{:<{}} -> {}\n", shown[i], width, run.task->decode(best[i].tokens));
  return out;
}

// Text sampled from a language model's run: each next token drawn from the model's distribution at the
// last step (scaled by 1/temperature), given the text so far (its last data.length tokens).
std::string sample(Run& run, const GenerateOptions& o) {
  KILN_CHECK(o.temperature > 0 && std::isfinite(o.temperature), "generate: --temperature must be a positive number, got {}",
             o.temperature);
  KILN_CHECK(o.length >= 0 && o.length <= 1000000, "generate: --length must be 0 to 1000000, got {}", o.length);
  Generator gen(o.seed);
  std::vector<std::int64_t> ids = run.task->encode(o.prime.empty() ? std::string("\n") : o.prime);
  if (ids.empty()) ids.push_back(0);
  std::vector<std::int64_t> generated;
  const std::int64_t unknown = run.task->unknown_id();
  for (std::int64_t n = 0; n < o.length; ++n) {
    const std::size_t window = std::min<std::size_t>(ids.size(), static_cast<std::size_t>(run.e.data.length));
    const std::vector<std::int64_t> context(ids.end() - static_cast<std::ptrdiff_t>(window), ids.end());
    Batch b;
    b.x = from_data(context, {1, static_cast<std::int64_t>(window)});
    const std::vector<double> logits = run.model->forward(b).value().to_vector();
    const std::size_t classes = logits.size() / window;
    const auto last = logits.begin() + static_cast<std::ptrdiff_t>((window - 1) * classes);
    const double top = *std::max_element(last, last + static_cast<std::ptrdiff_t>(classes));
    std::vector<double> p(classes);
    double total = 0;
    for (std::size_t c = 0; c < classes; ++c)
      total += p[c] = static_cast<std::int64_t>(c) == unknown ? 0 : std::exp((last[static_cast<std::ptrdiff_t>(c)] - top) / o.temperature);
    double u = gen.next_double() * total;
    std::size_t pick = 0;
    while (pick + 1 < classes && (u -= p[pick]) >= 0) ++pick;
    ids.push_back(static_cast<std::int64_t>(pick));
    generated.push_back(static_cast<std::int64_t>(pick));
  }
  const std::string text = run.task->decode(generated);
  const bool space = run.task->words() && !o.prime.empty() && o.prime.back() != '\n' && !text.empty() &&
                     std::isalnum(static_cast<unsigned char>(text[0]));
  return o.prime + (space ? " " : "") + text + "\n";
}

}  // namespace

std::string generate_text(const std::string& dir, const GenerateOptions& o) {
  auto run = open_run(dir, "generate");
  KILN_CHECK(run->task->has_text(), "generate {}: the run trains '{}', which has no text to generate; generate samples from a "
             "char_lm or word_lm run and translates with a seq2seq run", dir, run->e.data.task);
  KILN_CHECK(run->task->seq2seq() || o.inputs.empty(), "generate {}: --input is for seq2seq runs; a language model continues --prime",
             dir);
  load_weights(*run, dir, "generate");
  NoGradGuard no_grad;
  run->model->module().eval();
  return run->task->seq2seq() ? translate(*run, o) : sample(*run, o);
}

}  // namespace kiln::experiment

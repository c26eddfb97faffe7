#include "seq2seq/search.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "autograd/grad_mode.hpp"
#include "ops/ops.hpp"

namespace kiln::nn {
namespace {

constexpr double kDead = -std::numeric_limits<double>::infinity();

void check_options(const SearchOptions& o, const char* who) {
  KILN_CHECK(o.max_len_ >= 1 && o.beam_width_ >= 1, "{}: max_len and beam_width must be at least 1, got {} and {}", who,
             o.max_len_, o.beam_width_);
  KILN_CHECK(std::isfinite(o.length_penalty_) && o.length_penalty_ >= 0, "{}: length_penalty must be a non-negative number, got {}",
             who, o.length_penalty_);
  KILN_CHECK(o.bos_ >= 0 && o.eos_ >= 0, "{}: bos and eos must be token ids (0 or more), got {} and {}", who, o.bos_, o.eos_);
}

// The token ids against the vocabulary the decoder's first step reveals: an EOS it can never produce would
// only ever stop at max_len.
void check_vocabulary(const SearchOptions& o, std::int64_t vocab, const char* who) {
  KILN_CHECK(o.bos_ < vocab && o.eos_ < vocab, "{}: bos {} and eos {} must be ids in the decoder's vocabulary of {}", who,
             o.bos_, o.eos_, vocab);
}

Variable tokens_tensor(const std::vector<std::int64_t>& t) { return Variable(from_data(t)); }

std::vector<double> row(const std::vector<double>& flat, std::int64_t r, std::int64_t width) {
  return std::vector<double>(flat.begin() + r * width, flat.begin() + (r + 1) * width);
}

double normalised(double log_prob, std::size_t length, double alpha) {
  return log_prob / std::pow(static_cast<double>(std::max<std::size_t>(length, 1)), alpha);
}

// Note [Beam search]: a source is done when k hypotheses have finished and no live beam, scored at its
// current length, beats the worst of the k best finished ones.
bool cannot_improve(std::vector<Hypothesis>& finished, const std::vector<Hypothesis>& live, std::int64_t b,
                    std::int64_t k, double alpha) {
  if (static_cast<std::int64_t>(finished.size()) < k) return false;
  std::sort(finished.begin(), finished.end(), [](const Hypothesis& x, const Hypothesis& y) { return x.score > y.score; });
  const double worst = finished[static_cast<std::size_t>(k - 1)].score;
  for (std::int64_t j = 0; j < k; ++j) {
    const Hypothesis& h = live[static_cast<std::size_t>(b * k + j)];
    if (h.log_prob != kDead && normalised(h.log_prob, h.tokens.size(), alpha) > worst) return false;
  }
  return true;
}

}  // namespace

void DecodeState::select(const std::vector<std::int64_t>& rows) {
  const Variable index = tokens_tensor(rows);
  for (std::size_t i = 0; i < tensors.size(); ++i)
    if (tensors[i].defined()) tensors[i] = index_select(tensors[i], batch_axis[i], index);
}

std::vector<Hypothesis> greedy_search(IncrementalDecoder& decoder, const Variable& src, const Variable& src_lengths,
                                      const SearchOptions& o) {
  check_options(o, "greedy_search");
  NoGradGuard no_grad;
  DecodeState state = decoder.start(src, src_lengths);
  const std::int64_t batch = src.size(0);
  std::vector<Hypothesis> out(static_cast<std::size_t>(batch));
  std::vector<std::int64_t> prev(static_cast<std::size_t>(batch), o.bos_);
  for (std::int64_t t = 0; t < o.max_len_; ++t) {
    Variable attention;
    const Variable logp = decoder.step(tokens_tensor(prev), state, o.keep_attention_ ? &attention : nullptr);
    const std::int64_t vocab = logp.size(1);
    if (t == 0) check_vocabulary(o, vocab, "greedy_search");
    const std::vector<double> lp = logp.value().to_vector();
    const std::vector<double> att = attention.defined() ? attention.value().to_vector() : std::vector<double>();
    bool all_done = true;
    for (std::int64_t b = 0; b < batch; ++b) {
      Hypothesis& h = out[static_cast<std::size_t>(b)];
      if (h.finished) continue;
      const auto first = lp.begin() + b * vocab;
      const std::int64_t best = std::max_element(first, first + vocab) - first;
      h.log_prob += *(first + best);
      if (attention.defined()) h.attention.push_back(row(att, b, attention.size(1)));
      if (best == o.eos_) h.finished = true;
      else h.tokens.push_back(best);
      prev[static_cast<std::size_t>(b)] = best;
      all_done = all_done && h.finished;
    }
    if (all_done) break;
  }
  for (Hypothesis& h : out) h.score = normalised(h.log_prob, h.tokens.size() + h.finished, o.length_penalty_);
  return out;
}

std::vector<Hypothesis> beam_search(IncrementalDecoder& decoder, const Variable& src, const Variable& src_lengths,
                                    const SearchOptions& o) {
  check_options(o, "beam_search");
  NoGradGuard no_grad;
  const std::int64_t batch = src.size(0), k = o.beam_width_;
  DecodeState state = decoder.start(src, src_lengths);
  std::vector<std::int64_t> rows;
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t j = 0; j < k; ++j) rows.push_back(b);
  state.select(rows);

  // live[b * k + j]: beam j of source b; a dead beam has log_prob -inf.
  std::vector<Hypothesis> live(static_cast<std::size_t>(batch * k));
  for (std::int64_t i = 0; i < batch * k; ++i) live[static_cast<std::size_t>(i)].log_prob = i % k == 0 ? 0 : kDead;
  std::vector<std::vector<Hypothesis>> finished(static_cast<std::size_t>(batch));
  std::vector<bool> done(static_cast<std::size_t>(batch), false);

  for (std::int64_t t = 0; t < o.max_len_; ++t) {
    std::vector<std::int64_t> prev;
    for (const Hypothesis& h : live) prev.push_back(h.tokens.empty() ? o.bos_ : h.tokens.back());
    Variable attention;
    const Variable logp = decoder.step(tokens_tensor(prev), state, o.keep_attention_ ? &attention : nullptr);
    const std::int64_t vocab = logp.size(1);
    if (t == 0) check_vocabulary(o, vocab, "beam_search");
    const std::vector<double> lp = logp.value().to_vector();
    const std::vector<double> att = attention.defined() ? attention.value().to_vector() : std::vector<double>();

    std::vector<Hypothesis> next(live.size());
    std::vector<std::int64_t> from(live.size());
    for (std::int64_t b = 0; b < batch; ++b) {
      for (std::int64_t j = 0; j < k; ++j) from[static_cast<std::size_t>(b * k + j)] = b * k;
      for (std::int64_t j = 0; j < k; ++j) next[static_cast<std::size_t>(b * k + j)].log_prob = kDead;
      if (done[static_cast<std::size_t>(b)]) continue;
      // Every extension of every live beam, best first; 2k of them always leave k that do not end in EOS.
      std::vector<std::pair<double, std::int64_t>> cand;  // (log p, beam * vocab + token)
      for (std::int64_t j = 0; j < k; ++j) {
        const double base = live[static_cast<std::size_t>(b * k + j)].log_prob;
        if (base == kDead) continue;
        for (std::int64_t v = 0; v < vocab; ++v) cand.emplace_back(base + lp[(b * k + j) * vocab + v], j * vocab + v);
      }
      const std::size_t keep = std::min<std::size_t>(cand.size(), static_cast<std::size_t>(2 * k));
      std::partial_sort(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(keep), cand.end(),
                        [](const auto& x, const auto& y) { return x.first > y.first || (x.first == y.first && x.second < y.second); });
      std::int64_t filled = 0;
      for (std::size_t c = 0; c < keep && filled < k; ++c) {
        const std::int64_t j = cand[c].second / vocab, token = cand[c].second % vocab;
        const std::int64_t src_row = b * k + j;
        Hypothesis h = live[static_cast<std::size_t>(src_row)];
        h.log_prob = cand[c].first;
        if (attention.defined()) h.attention.push_back(row(att, src_row, attention.size(1)));
        if (token == o.eos_) {
          h.finished = true;
          h.score = normalised(h.log_prob, h.tokens.size() + 1, o.length_penalty_);
          finished[static_cast<std::size_t>(b)].push_back(std::move(h));
          continue;
        }
        h.tokens.push_back(token);
        next[static_cast<std::size_t>(b * k + filled)] = std::move(h);
        from[static_cast<std::size_t>(b * k + filled)] = src_row;
        ++filled;
      }
      done[static_cast<std::size_t>(b)] = cannot_improve(finished[static_cast<std::size_t>(b)], next, b, k, o.length_penalty_);
    }
    live = std::move(next);
    if (std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
    state.select(from);
  }

  std::vector<Hypothesis> best(static_cast<std::size_t>(batch));
  for (std::int64_t b = 0; b < batch; ++b) {
    auto& pool = finished[static_cast<std::size_t>(b)];
    if (!done[static_cast<std::size_t>(b)])
      for (std::int64_t j = 0; j < k; ++j) {
        Hypothesis h = live[static_cast<std::size_t>(b * k + j)];
        if (h.log_prob == kDead) continue;
        h.score = normalised(h.log_prob, h.tokens.size(), o.length_penalty_);
        pool.push_back(std::move(h));
      }
    KILN_CHECK(!pool.empty(), "beam_search: source {} ended with no hypothesis", b);
    best[static_cast<std::size_t>(b)] = *std::max_element(
        pool.begin(), pool.end(), [](const Hypothesis& x, const Hypothesis& y) { return x.score < y.score; });
  }
  return best;
}

}  // namespace kiln::nn

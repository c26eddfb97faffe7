// Greedy and beam search on a decoder whose probabilities are a fixed table, so the best sequence is
// known: beam search finds what greedy misses, stops at EOS, honours max_len and the length penalty.

#include <cmath>

#include <gtest/gtest.h>

#include "ops/ops.hpp"
#include "seq2seq/search.hpp"

namespace kiln::nn {
namespace {

// Tokens: 0 = BOS, 1 = EOS, 2 = a, 3 = b. p(next | previous token) from a table; the state is the step
// count per row, so select() is exercised too.
class TableDecoder : public IncrementalDecoder {
 public:
  explicit TableDecoder(std::vector<std::vector<double>> table) : table_(std::move(table)) {}
  DecodeState start(const Variable& src, const Variable&) override {
    DecodeState s;
    s.add(Variable(zeros({src.size(0), 1}, kFloat64)), 0);
    return s;
  }
  Variable step(const Variable& tokens, DecodeState& state, Variable* attention) override {
    const std::int64_t n = tokens.size(0);
    std::vector<double> lp;
    for (std::int64_t i = 0; i < n; ++i)
      for (double p : table_[static_cast<std::size_t>(tokens.value().data<std::int64_t>()[i])]) lp.push_back(std::log(p));
    state.tensors[0] = state.tensors[0] + 1.0;
    if (attention != nullptr) *attention = state.tensors[0];
    return Variable(from_data(lp, {n, 4}));
  }

 private:
  std::vector<std::vector<double>> table_;
};

// From BOS: a 0.5, b 0.4. After a: EOS 0.3 / a 0.35 / b 0.35 (no good ending); after b: EOS 0.9.
// Greedy picks a then a...; the best sequence is "b" (0.4 * 0.9 = 0.36 vs "a" 0.5 * 0.3 = 0.15).
TableDecoder trap() {
  return TableDecoder({{0.05, 0.05, 0.5, 0.4}, {0.25, 0.25, 0.25, 0.25}, {0, 0.3, 0.35, 0.35}, {0.0, 0.9, 0.05, 0.05}});
}

const Variable kSrc(zeros({2, 3}, kInt64));

TEST(Search, BeamFindsWhatGreedyMisses) {
  TableDecoder d = trap();
  const auto g = greedy_search(d, kSrc, Variable(), SearchOptions(0, 1).max_len(4).length_penalty(0));
  EXPECT_EQ(g[0].tokens, (std::vector<std::int64_t>{2, 2, 2, 2}));
  EXPECT_FALSE(g[0].finished);
  const auto b = beam_search(d, kSrc, Variable(), SearchOptions(0, 1).max_len(4).beam_width(2).length_penalty(0));
  ASSERT_EQ(b.size(), 2u);
  for (const auto& h : b) {
    EXPECT_EQ(h.tokens, (std::vector<std::int64_t>{3}));
    EXPECT_TRUE(h.finished);
    EXPECT_NEAR(h.log_prob, std::log(0.4 * 0.9), 1e-12);
    ASSERT_EQ(h.attention.size(), 2u);  // b and EOS
    EXPECT_EQ(h.attention[1][0], 2.0);  // the state followed the beam: its second step
  }
}

TEST(Search, BeamWidthOneIsGreedy) {
  TableDecoder d = trap();
  const auto g = greedy_search(d, kSrc, Variable(), SearchOptions(0, 1).max_len(5).length_penalty(0));
  const auto b = beam_search(d, kSrc, Variable(), SearchOptions(0, 1).max_len(5).beam_width(1).length_penalty(0));
  EXPECT_EQ(g[1].tokens, b[1].tokens);
  EXPECT_NEAR(g[1].log_prob, b[1].log_prob, 1e-12);
}

TEST(Search, LengthPenaltyPrefersLongerWhenPerTokenBetter) {
  // From BOS: EOS 0.4, a 0.6; after a: a 0.8, EOS 0.2. By total log-probability EOS at once wins
  // (log 0.4 against log 0.6 + 5 log 0.8 for six a's); per token, the long sequence does.
  TableDecoder d({{0, 0.4, 0.6, 0}, {0.25, 0.25, 0.25, 0.25}, {0, 0.2, 0.8, 0}, {0.25, 0.25, 0.25, 0.25}});
  const auto total = beam_search(d, kSrc, Variable(), SearchOptions(0, 1).max_len(6).beam_width(3).length_penalty(0));
  EXPECT_TRUE(total[0].tokens.empty());  // EOS at once: log 0.4 beats any longer sequence's total
  const auto mean = beam_search(d, kSrc, Variable(), SearchOptions(0, 1).max_len(6).beam_width(3).length_penalty(1));
  EXPECT_EQ(mean[0].tokens.size(), 6u);
  EXPECT_GT(mean[0].score, total[0].score);
}

TEST(Search, BadOptionsAreErrors) {
  TableDecoder d = trap();
  EXPECT_THROW(beam_search(d, kSrc, Variable(), SearchOptions(0, 1).beam_width(0)), Error);
  EXPECT_THROW(greedy_search(d, kSrc, Variable(), SearchOptions(0, 1).max_len(0)), Error);
  // Issue 17: an EOS the decoder can never produce, a negative id and a NaN penalty are refused.
  for (const SearchOptions& bad : {SearchOptions(0, 1000), SearchOptions(-1, 1), SearchOptions(0, 1).length_penalty(NAN)}) {
    EXPECT_THROW(greedy_search(d, kSrc, Variable(), bad), Error);
    EXPECT_THROW(beam_search(d, kSrc, Variable(), bad), Error);
  }
}

}  // namespace
}  // namespace kiln::nn

#include "seq2seq/teacher_forcing.hpp"

namespace kiln::nn {
namespace {

TEST(TeacherForcing, Schedules) {
  EXPECT_EQ(TeacherForcing::constant(0.7).ratio(1000), 0.7);
  const auto lin = TeacherForcing::linear(1, 0.2, 100);
  EXPECT_DOUBLE_EQ(lin.ratio(0), 1);
  EXPECT_DOUBLE_EQ(lin.ratio(50), 0.6);
  EXPECT_DOUBLE_EQ(lin.ratio(500), 0.2);
  EXPECT_DOUBLE_EQ(TeacherForcing::exponential(0.99).ratio(100), std::pow(0.99, 100));
  const auto inv = TeacherForcing::inverse_sigmoid(100);
  EXPECT_NEAR(inv.ratio(0), 100.0 / 101, 1e-15);
  EXPECT_GT(inv.ratio(100), inv.ratio(1000));
  EXPECT_GE(inv.ratio(1000000), 0.0);
  EXPECT_EQ(lin.describe(), "linear(1 -> 0.2 over 100 steps)");
  EXPECT_THROW(TeacherForcing::constant(1.5), Error);
  EXPECT_THROW(TeacherForcing::exponential(1), Error);
}

}  // namespace
}  // namespace kiln::nn

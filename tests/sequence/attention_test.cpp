// Scaled dot-product and multi-head attention: values against a hand-written loop, masks, the KV cache,
// finite differences through every parameter, and errors that name the offending shapes.

#include <cmath>

#include <gtest/gtest.h>

#include "sequence/attention.hpp"
#include "layers/gradcheck_module.hpp"
#include "ops/ops.hpp"

namespace kiln::nn {
namespace {

using In = std::vector<Variable>;
using V = std::vector<double>;

Variable randn(const Shape& s, Generator& g, bool grad = false) { return Variable(normal(s, 0, 1, kFloat64, &g), grad); }

// softmax(q k^T / sqrt(E)) v for one [L, E] slice, written out as loops.
V naive_attention(const V& q, const V& k, const V& v, std::int64_t lq, std::int64_t lk, std::int64_t e,
                  const std::vector<bool>& masked) {
  V out(static_cast<std::size_t>(lq * e), 0.0);
  for (std::int64_t i = 0; i < lq; ++i) {
    V s(static_cast<std::size_t>(lk));
    double m = -INFINITY;
    for (std::int64_t j = 0; j < lk; ++j) {
      double d = 0;
      for (std::int64_t c = 0; c < e; ++c) d += q[i * e + c] * k[j * e + c];
      s[j] = masked.empty() || !masked[i * lk + j] ? d / std::sqrt(double(e)) : -INFINITY;
      m = std::max(m, s[j]);
    }
    double z = 0;
    for (auto& x : s) z += (x = std::exp(x - m));
    for (std::int64_t j = 0; j < lk; ++j)
      for (std::int64_t c = 0; c < e; ++c) out[i * e + c] += s[j] / z * v[j * e + c];
  }
  return out;
}

TEST(Attention, ScaledDotProductMatchesLoops) {
  Generator g(3);
  const Variable q = randn({3, 4}, g), k = randn({5, 4}, g), v = randn({5, 4}, g);
  const V want = naive_attention(q.value().to_vector(), k.value().to_vector(), v.value().to_vector(), 3, 5, 4, {});
  const AttentionOutput a = scaled_dot_product_attention(q, k, v);
  const V got = a.output.value().to_vector();
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-12);
  EXPECT_EQ(a.weights.shape(), (Shape{3, 5}));
  // Causal with fewer queries than keys: the 3 queries are the last 3 of 5 positions.
  std::vector<bool> masked(15);
  for (int i = 0; i < 3; ++i)
    for (int j = 2 + i + 1; j < 5; ++j) masked[i * 5 + j] = true;
  const V want_causal = naive_attention(q.value().to_vector(), k.value().to_vector(), v.value().to_vector(), 3, 5, 4, masked);
  const V got_causal = scaled_dot_product_attention(q, k, v, Variable(), true).output.value().to_vector();
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got_causal[i], want_causal[i], 1e-12);
}

TEST(Attention, BoolAndFloatMasksAgree) {
  Generator g(4);
  const Variable q = randn({2, 3, 4}, g), k = randn({2, 6, 4}, g), v = randn({2, 6, 2}, g);
  std::vector<bool> m(18);
  std::vector<double> f(18);
  for (int i = 0; i < 18; ++i) m[i] = (i * 7) % 5 == 0, f[i] = m[i] ? -INFINITY : 0;
  const auto a = scaled_dot_product_attention(q, k, v, Variable(from_data(m, {3, 6})));
  const auto b = scaled_dot_product_attention(q, k, v, Variable(from_data(f, {3, 6})));
  EXPECT_LT(max_abs_diff(a.output.value(), b.output.value()), 1e-14);
  const V w = a.weights.value().to_vector();
  for (std::size_t i = 0; i < w.size(); ++i)
    if (m[i % 18]) EXPECT_EQ(w[i], 0.0) << "masked weight " << i;
}

TEST(Attention, FullyMaskedRowAttendsUniformlyNotNaN) {
  Generator g(5);
  const Variable q = randn({2, 3}, g, true), k = randn({4, 3}, g), v = randn({4, 3}, g);
  const Variable mask(from_data(std::vector<bool>{true, true, true, true, false, true, false, true}, {2, 4}));
  const auto a = scaled_dot_product_attention(q, k, v, mask);
  const V w = a.weights.value().to_vector();
  for (int j = 0; j < 4; ++j) EXPECT_DOUBLE_EQ(w[j], 0.25);
  EXPECT_DOUBLE_EQ(w[4] + w[6], 1.0);
  sum(a.output).backward();
  for (double x : q.grad().to_vector()) EXPECT_TRUE(std::isfinite(x));
}

TEST(MultiheadAttention, PyTorchNamesShapesAndInit) {
  MultiheadAttention mha(MultiheadAttentionOptions(8, 2));
  std::vector<std::string> names;
  for (const auto& [n, p] : mha.named_parameters()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"}));
  EXPECT_EQ(mha.in_proj_weight.shape(), (Shape{24, 8}));
  for (double b : mha.in_proj_bias.value().to_vector()) EXPECT_EQ(b, 0.0);
  for (double b : mha.out_proj->bias.value().to_vector()) EXPECT_EQ(b, 0.0);
  const double bound = std::sqrt(6.0 / (24 + 8));
  for (double w : mha.in_proj_weight.value().to_vector()) EXPECT_LE(std::abs(w), bound);
  MultiheadAttention separate(MultiheadAttentionOptions(8, 2).kdim(3).vdim(5).bias(false));
  names.clear();
  for (const auto& [n, p] : separate.named_parameters()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"q_proj_weight", "k_proj_weight", "v_proj_weight", "out_proj.weight"}));
  // Layouts: [L, B, E] by default, [B, L, E] with batch_first, [L, E] unbatched.
  const Variable x(zeros({5, 3, 8}));
  auto r = mha.forward(x, x, x);
  EXPECT_EQ(r.output.shape(), (Shape{5, 3, 8}));
  EXPECT_EQ(r.weights.shape(), (Shape{3, 5, 5}));
  EXPECT_EQ(mha.forward(Variable(zeros({5, 8})), Variable(zeros({7, 8})), Variable(zeros({7, 8}))).weights.shape(),
            (Shape{5, 7}));
  const Variable kx(zeros({3, 7, 3})), vx(zeros({3, 7, 5}));
  MultiheadAttention bf(MultiheadAttentionOptions(8, 2).kdim(3).vdim(5).batch_first(true));
  auto s = bf.forward(Variable(zeros({3, 4, 8})), kx, vx, AttentionForwardOptions().average_attn_weights(false));
  EXPECT_EQ(s.output.shape(), (Shape{3, 4, 8}));
  EXPECT_EQ(s.weights.shape(), (Shape{3, 2, 4, 7}));
}

// The fused q/k/v projection of self-attention equals three separate ones.
TEST(MultiheadAttention, SelfAttentionPathEqualsCrossPath) {
  MultiheadAttention mha(MultiheadAttentionOptions(6, 3).batch_first(true));
  mha.to(kFloat64);
  Generator g(8);
  mha.in_proj_bias.set_value(normal({18}, 0, 1, kFloat64, &g));
  const Variable x = randn({2, 4, 6}, g);
  const Variable copy(x.value().clone());
  const auto a = mha.forward(x, x, x), b = mha.forward(x, copy, Variable(x.value().clone()));
  EXPECT_LT(max_abs_diff(a.output.value(), b.output.value()), 1e-14);
}

struct MaskCase {
  std::string name;
  std::function<AttentionForwardOptions()> opts;
};
void PrintTo(const MaskCase& c, std::ostream* os) { *os << c.name; }
class MultiheadAttentionGrad : public ::testing::TestWithParam<MaskCase> {};

// Finite differences w.r.t. query, key, value and every parameter, with each kind of mask.
TEST_P(MultiheadAttentionGrad, Gradcheck) {
  MultiheadAttention mha(MultiheadAttentionOptions(6, 2).batch_first(true));
  Generator g(11);
  mha.to(kFloat64);
  mha.in_proj_bias.set_value(normal({18}, 0, 0.5, kFloat64, &g));
  const In in{randn({2, 3, 6}, g, true), randn({2, 4, 6}, g, true), randn({2, 4, 6}, g, true)};
  const auto opts = GetParam().opts();
  const auto r = gradcheck_module(mha, in, [&](const In& v) {
    const auto a = mha.forward(v[0], v[1], v[2], opts);
    return concat({reshape(a.output, {-1}), reshape(a.weights, {-1})}, 0);
  });
  EXPECT_TRUE(r.ok) << r.message;
}

INSTANTIATE_TEST_SUITE_P(
    Masks, MultiheadAttentionGrad,
    ::testing::Values(
        MaskCase{"none", [] { return AttentionForwardOptions(); }},
        MaskCase{"causal", [] { return AttentionForwardOptions().is_causal(true).average_attn_weights(false); }},
        MaskCase{"bool_attn_mask",
                 [] {
                   return AttentionForwardOptions().attn_mask(Variable(from_data(
                       std::vector<bool>{false, true, false, false, true, false, false, true, false, false, false, true},
                       {3, 4})));
                 }},
        MaskCase{"float_attn_mask_per_head",
                 [] {
                   Generator g(2);
                   return AttentionForwardOptions().attn_mask(Variable(normal({4, 3, 4}, 0, 1, kFloat64, &g)));
                 }},
        MaskCase{"key_padding", [] {
                   return AttentionForwardOptions().key_padding_mask(Variable(
                       from_data(std::vector<bool>{false, false, true, true, false, false, false, true}, {2, 4})));
                 }}),
    [](const auto& info) { return info.param.name; });

// Decoding one position at a time with a cache gives what the whole prefix with a causal mask gives.
TEST(MultiheadAttention, KVCacheEqualsFullCausalPass) {
  MultiheadAttention mha(MultiheadAttentionOptions(8, 2).batch_first(true));
  mha.to(kFloat64);
  Generator g(12);
  const Variable x = randn({3, 5, 8}, g);
  const Variable full = mha.forward(x, x, x, AttentionForwardOptions().is_causal(true)).output;
  KVCache cache;
  std::vector<Variable> steps;
  for (std::int64_t t = 0; t < 5; ++t) {
    const Variable xt = narrow(x, 1, t, 1);
    steps.push_back(mha.forward(xt, xt, xt, AttentionForwardOptions().cache(&cache).is_causal(true)).output);
    EXPECT_EQ(cache.length(), t + 1);
  }
  EXPECT_LT(max_abs_diff(concat(steps, 1).value(), full.value()), 1e-13);
  // Two new positions at once over the cache: causal among themselves too.
  KVCache c2;
  const Variable first = narrow(x, 1, 0, 3), rest = narrow(x, 1, 3, 2);
  mha.forward(first, first, first, AttentionForwardOptions().cache(&c2).is_causal(true));
  const Variable tail = mha.forward(rest, rest, rest, AttentionForwardOptions().cache(&c2).is_causal(true)).output;
  EXPECT_LT(max_abs_diff(tail.value(), narrow(full, 1, 3, 2).value()), 1e-13);
}

TEST(MultiheadAttention, ErrorsNameShapes) {
  auto message = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([] { MultiheadAttention(MultiheadAttentionOptions(10, 3)); }).find("embed_dim 10 is not divisible by num_heads 3"),
            std::string::npos);
  MultiheadAttention mha(MultiheadAttentionOptions(8, 2).batch_first(true));
  const Variable x(zeros({2, 5, 8}));
  EXPECT_NE(message([&] { mha.forward(Variable(zeros({2, 5, 6})), x, x); }).find("[2, 5, 6]"), std::string::npos);
  EXPECT_NE(message([&] {
              mha.forward(x, x, x, AttentionForwardOptions().attn_mask(Variable(zeros({4, 5}, kBool))));
            }).find("attn_mask must be [5, 5] or [4, 5, 5] (batch * num_heads, Lq, Lk), got [4, 5]"),
            std::string::npos);
  EXPECT_NE(message([&] {
              mha.forward(x, x, x, AttentionForwardOptions().key_padding_mask(Variable(zeros({5, 2}, kBool))));
            }).find("key_padding_mask must be [2, 5]"),
            std::string::npos);
  EXPECT_NE(message([&] {
              mha.forward(x, x, x, AttentionForwardOptions().attn_mask(Variable(zeros({5, 5}, kInt64))));
            }).find("attn_mask must be bool"),
            std::string::npos);
  EXPECT_NE(message([&] { mha.forward(x, Variable(zeros({3, 5, 8})), Variable(zeros({3, 5, 8}))); }).find("batch size"),
            std::string::npos);
}

// Issue 17: a NaN or infinite scale is refused instead of giving NaN weights.
TEST(Attention, NonFiniteScaleIsAnError) {
  const Variable q(kiln::randn({1, 2, 4})), k(kiln::randn({1, 3, 4})), v(kiln::randn({1, 3, 4}));
  EXPECT_THROW(scaled_dot_product_attention(q, k, v, Variable(), false, 0, false, NAN), Error);
  EXPECT_THROW(scaled_dot_product_attention(q, k, v, Variable(), false, 0, false, INFINITY), Error);
  EXPECT_NO_THROW(scaled_dot_product_attention(q, k, v, Variable(), false, 0, false, 0.5));
}

}  // namespace
}  // namespace kiln::nn

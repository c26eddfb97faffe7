// Forward values checked against hand-computed results, op by op (gradients are in the table test).

#include <cmath>

#include <gtest/gtest.h>

#include "ops/ops.hpp"

namespace kiln {
namespace {

using V = std::vector<double>;

Variable t(V v, const Shape& s = {}) { return Variable(from_data(v, s)); }
Variable tf(std::vector<float> v, const Shape& s = {}) { return Variable(from_data(v, s)); }
V vals(const Variable& v) { return v.value().to_vector(); }
void expect_near(const V& got, const V& want, double tol = 1e-12) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

TEST(BinaryOps, Broadcasting) {
  Variable a = t({1, 2, 3, 4, 5, 6}, {2, 3}), b = t({10, 20, 30}, {3}), c = t({100, 200}, {2, 1});
  EXPECT_EQ(vals(add(a, b)), (V{11, 22, 33, 14, 25, 36}));
  EXPECT_EQ(vals(sub(a, c)), (V{-99, -98, -97, -196, -195, -194}));
  EXPECT_EQ(vals(mul(a, b)), (V{10, 40, 90, 40, 100, 180}));
  EXPECT_EQ(vals(div(b, t({10}))), (V{1, 2, 3}));
  EXPECT_EQ(add(a, c).shape(), (Shape{2, 3}));
  EXPECT_EQ(add(t({1, 2}, {2, 1}), t({1, 2, 3}, {3})).shape(), (Shape{2, 3}));
}

TEST(BinaryOps, PowMaximumMinimumWhere) {
  expect_near(vals(pow(t({2, 9}), t({3, 0.5}))), {8, 3});
  expect_near(vals(pow(t({2, 4}), 2.0)), {4, 16});
  EXPECT_EQ(vals(maximum(t({1, 5, 3}), t({4, 2, 3}))), (V{4, 5, 3}));
  EXPECT_EQ(vals(minimum(t({1, 5, 3}), t({4, 2, 3}))), (V{1, 2, 3}));
  Variable mask(from_data(std::vector<bool>{true, false, true}));
  EXPECT_EQ(vals(where(mask, t({1, 2, 3}), t({-1, -2, -3}))), (V{1, -2, 3}));
  EXPECT_EQ(vals(masked_fill(t({1, 2, 3, 4, 5, 6}, {2, 3}), mask, 0)), (V{0, 2, 0, 0, 5, 0}));
}

// A 2-D mask broadcast over leading dims selects the same elements in every slice (Note [Broadcast bool
// masks]: xtensor's xt::where got this wrong with xsimd).
TEST(BinaryOps, MaskBroadcastOverLeadingDims) {
  std::vector<bool> tri(25);
  for (int i = 0; i < 5; ++i)
    for (int j = i + 1; j < 5; ++j) tri[static_cast<std::size_t>(i * 5 + j)] = true;
  const Variable mask(from_data(tri, {5, 5}));
  for (DType dt : {kFloat32, kFloat64}) {
    const Variable zero(zeros({2, 3, 5, 5}, dt)), one(ones({2, 3, 5, 5}, dt));
    const V filled = vals(masked_fill(zero, mask, 1));
    const V chosen = vals(where(mask, one, zero));
    for (std::size_t k = 0; k < filled.size(); ++k) {
      EXPECT_EQ(filled[k], tri[k % 25] ? 1 : 0) << dtype_name(dt) << " element " << k;
      EXPECT_EQ(chosen[k], tri[k % 25] ? 1 : 0) << dtype_name(dt) << " element " << k;
    }
  }
}

TEST(BinaryOps, ScalarsAndOperators) {
  Variable a = t({1, 2});
  EXPECT_EQ(vals(a + 1.0), (V{2, 3}));
  EXPECT_EQ(vals(1.0 + a), (V{2, 3}));
  EXPECT_EQ(vals(a - 1.0), (V{0, 1}));
  EXPECT_EQ(vals(1.0 - a), (V{0, -1}));
  EXPECT_EQ(vals(a * 3.0), (V{3, 6}));
  EXPECT_EQ(vals(a / 2.0), (V{0.5, 1}));
  EXPECT_EQ(vals(2.0 / a), (V{2, 1}));
  EXPECT_EQ(vals(-a), (V{-1, -2}));
  EXPECT_EQ(vals(a * a - a / a), (V{0, 3}));
  EXPECT_EQ((tf({1.f}) * 2.0).dtype(), kFloat32);
}

TEST(UnaryOps, Values) {
  expect_near(vals(neg(t({1, -2}))), {-1, 2});
  expect_near(vals(exp(t({0, 1}))), {1, std::exp(1.0)});
  expect_near(vals(log(t({1, std::exp(2.0)}))), {0, 2});
  expect_near(vals(sqrt(t({4, 2}))), {2, std::sqrt(2.0)});
  expect_near(vals(abs(t({-3, 2}))), {3, 2});
  expect_near(vals(tanh(t({0, 0.5}))), {0, std::tanh(0.5)});
  expect_near(vals(sigmoid(t({0, 2}))), {0.5, 1 / (1 + std::exp(-2.0))});
  expect_near(vals(relu(t({-1, 0, 2}))), {0, 0, 2});
  expect_near(vals(gelu(t({0, 1, -1}))), {0, 0.8413447460685429, -0.15865525393145707});
  expect_near(vals(clamp(t({-2, 0.3, 5}), -1, 1)), {-1, 0.3, 1});
}

TEST(UnaryOps, Float32IsVectorisedAndAccurate) {
  std::vector<float> x(1000);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) / 100.f - 5.f;
  const V y = vals(tanh(tf(x)));
  for (std::size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], std::tanh(static_cast<double>(x[i])), 1e-6);
}

TEST(LinalgOps, Matmul) {
  Variable a = t({1, 2, 3, 4, 5, 6}, {2, 3}), b = t({1, 0, 0, 1, 1, 1}, {3, 2});
  EXPECT_EQ(vals(matmul(a, b)), (V{4, 5, 10, 11}));
  // Batched [2, 1, 2] x [2, 2] and [2, 1, 2] x [2, 2, 1].
  Variable x = t({1, 2, 3, 4}, {2, 1, 2});
  EXPECT_EQ(vals(matmul(x, t({1, 2, 3, 4}, {2, 2}))), (V{7, 10, 15, 22}));
  Variable m = matmul(x, t({1, 1, 2, 0}, {2, 2, 1}));
  EXPECT_EQ(m.shape(), (Shape{2, 1, 1}));
  EXPECT_EQ(vals(m), (V{3, 6}));
  EXPECT_EQ(vals(matmul(t({1, 2}), t({3, 4}))), (V{11}));
  EXPECT_EQ(matmul(t({1, 2}), t({1, 2, 3, 4}, {2, 2})).shape(), (Shape{2}));
}

TEST(LinalgOps, LinearUsesPyTorchLayout) {
  Variable x = t({1, 2}, {1, 2}), w = t({1, 0, 0, 1, 1, 1}, {3, 2}), b = t({10, 20, 30});
  EXPECT_EQ(vals(linear(x, w, b)), (V{11, 22, 33}));
  EXPECT_EQ(vals(linear(x, w)), (V{1, 2, 3}));
  EXPECT_EQ(linear(t({1, 2, 3, 4}, {2, 1, 2}), w).shape(), (Shape{2, 1, 3}));
}

TEST(ReduceOps, Values) {
  Variable a = t({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(vals(sum(a)), (V{21}));
  EXPECT_EQ(vals(sum(a, {0})), (V{5, 7, 9}));
  EXPECT_EQ(sum(a, {1}, true).shape(), (Shape{2, 1}));
  EXPECT_EQ(vals(mean(a, {-1})), (V{2, 5}));
  EXPECT_EQ(vals(max(t({1, 9, 3, 7, 5, 6}, {2, 3}), {1})), (V{9, 7}));
  EXPECT_EQ(vals(max(a)), (V{6}));
  expect_near(vals(logsumexp(t({0, 0, 1000, 1000}, {2, 2}), {1})), {std::log(2.0), 1000 + std::log(2.0)});
  expect_near(vals(var(t({1, 2, 3, 4}))), {5.0 / 3});
  expect_near(vals(var(t({1, 2, 3, 4}), {}, false)), {1.25});
}

TEST(ShapeOps, Values) {
  Variable a = t({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(reshape(a, {3, 2}).shape(), (Shape{3, 2}));
  EXPECT_EQ(flatten(t({1, 2, 3, 4}, {1, 2, 2})).shape(), (Shape{4}));
  EXPECT_EQ(vals(transpose(a, 0, 1)), (V{1, 4, 2, 5, 3, 6}));
  EXPECT_EQ(permute(t(V(24, 0), {2, 3, 4}), {2, 0, 1}).shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(squeeze(t({1, 2}, {1, 2, 1})).shape(), (Shape{2}));
  EXPECT_EQ(squeeze(t({1, 2}, {1, 2, 1}), 0).shape(), (Shape{2, 1}));
  EXPECT_EQ(unsqueeze(a, -1).shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(vals(concat({a, t({7, 8}, {2, 1})}, 1)), (V{1, 2, 3, 7, 4, 5, 6, 8}));
  EXPECT_EQ(vals(stack({t({1, 2}), t({3, 4})}, 1)), (V{1, 3, 2, 4}));
  auto parts = split(t({1, 2, 3, 4, 5}), 2, 0);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(vals(parts[2]), (V{5}));
  auto chunks = chunk(t({1, 2, 3, 4, 5, 6}), 3, 0);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(vals(chunks[1]), (V{3, 4}));
  EXPECT_EQ(vals(slice(t({0, 1, 2, 3, 4, 5, 6}), 0, 1, -1, 2)), (V{1, 3, 5}));
  EXPECT_EQ(vals(narrow(a, 1, 1, 2)), (V{2, 3, 5, 6}));
  EXPECT_EQ(vals(index_select(a, 1, Variable(from_data(std::vector<std::int64_t>{2, 0})))), (V{3, 1, 6, 4}));
  EXPECT_EQ(vals(gather(a, 1, Variable(from_data(std::vector<std::int64_t>{2, 2, 0, 1}, {2, 2})))), (V{3, 3, 4, 5}));
  Variable e = embedding(t({0, 0, 1, 1, 2, 2}, {3, 2}), Variable(from_data(std::vector<std::int64_t>{2, 1}, {2, 1})));
  EXPECT_EQ(e.shape(), (Shape{2, 1, 2}));
  EXPECT_EQ(vals(e), (V{2, 2, 1, 1}));
  EXPECT_EQ(vals(flip(a, {1})), (V{3, 2, 1, 6, 5, 4}));
  // padding_idx rows are looked up but receive no gradient.
  Variable w(from_data(V{1, 1, 2, 2, 3, 3}, {3, 2}), true);
  Variable looked = embedding(w, Variable(from_data(std::vector<std::int64_t>{0, 2, 0, 1})), 0);
  EXPECT_EQ(vals(looked), (V{1, 1, 3, 3, 1, 1, 2, 2}));
  sum(looked).backward();
  EXPECT_EQ(w.grad().to_vector(), (V{0, 0, 1, 1, 1, 1}));
  EXPECT_EQ(vals(flip(a, {0, 1})), (V{6, 5, 4, 3, 2, 1}));
}

TEST(NNOps, SoftmaxFamily) {
  Variable a = t({1, 2, 3, 1000, 1000, 1000}, {2, 3});
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  expect_near(vals(softmax(a, 1)), {std::exp(1.0) / z, std::exp(2.0) / z, std::exp(3.0) / z, 1. / 3, 1. / 3, 1. / 3});
  expect_near(vals(log_softmax(a, -1)), {1 - std::log(z), 2 - std::log(z), 3 - std::log(z), -std::log(3.0),
                                         -std::log(3.0), -std::log(3.0)});
  expect_near(vals(softmax(t({0, 0}, {2, 1}), 0)), {0.5, 0.5});
}

TEST(NNOps, DropoutScalesAndIsSeeded) {
  Variable x(ones({1000}, kFloat64));
  Generator g1(3), g2(3);
  const V a = vals(dropout(x, 0.25, true, &g1)), b = vals(dropout(x, 0.25, true, &g2));
  EXPECT_EQ(a, b);
  int kept = 0;
  for (double v : a) {
    EXPECT_TRUE(v == 0 || std::abs(v - 4.0 / 3) < 1e-12);
    kept += v != 0;
  }
  EXPECT_NEAR(kept, 750, 60);
  EXPECT_EQ(vals(dropout(x, 0.25, false)), V(1000, 1.0));
  EXPECT_EQ(vals(dropout(x, 1.0, true)), V(1000, 0.0));
}

TEST(NNOps, LayerNorm) {
  Variable x = t({1, 2, 3, 4, 10, 10, 10, 10}, {2, 4});
  const double s = std::sqrt(1.25 + 1e-5);
  expect_near(vals(layer_norm(x, {4})), {-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s, 0, 0, 0, 0}, 1e-12);
  expect_near(vals(layer_norm(x, {4}, t({2, 2, 2, 2}), t({1, 1, 1, 1}))),
              {1 - 3 / s, 1 - 1 / s, 1 + 1 / s, 1 + 3 / s, 1, 1, 1, 1}, 1e-12);
}

TEST(LossOps, Values) {
  EXPECT_DOUBLE_EQ(mse_loss(t({1, 2}), t({3, 2})).item(), 2.0);
  EXPECT_DOUBLE_EQ(mse_loss(t({1, 2}), t({3, 2}), Reduction::Sum).item(), 4.0);
  EXPECT_EQ(vals(mse_loss(t({1, 2}), t({3, 2}), Reduction::None)), (V{4, 0}));
  // BCE with logits at x = 0 is ln 2 for any target; large |x| stays finite.
  expect_near(vals(binary_cross_entropy_with_logits(t({0, 0, 100, -100}), t({0, 1, 1, 0}), Reduction::None)),
              {std::log(2.0), std::log(2.0), 0, 0});
  Variable lp = t({std::log(0.5), std::log(0.25), std::log(0.25), std::log(0.1), std::log(0.8), std::log(0.1)}, {2, 3});
  Variable tg(from_data(std::vector<std::int64_t>{0, 1}));
  EXPECT_NEAR(nll_loss(lp, tg).item(), -(std::log(0.5) + std::log(0.8)) / 2, 1e-12);
  EXPECT_NEAR(nll_loss(lp, tg, -100, Reduction::Sum).item(), -(std::log(0.5) + std::log(0.8)), 1e-12);
  Variable ignore(from_data(std::vector<std::int64_t>{0, -100}));
  EXPECT_NEAR(nll_loss(lp, ignore).item(), -std::log(0.5), 1e-12);
  EXPECT_NEAR(cross_entropy(t({0, 0, 0, 0}, {2, 2}), tg).item(), std::log(2.0), 1e-12);
  EXPECT_EQ(cross_entropy(t(V(12, 0.0), {2, 3, 2}), Variable(from_data(std::vector<std::int64_t>{0, 1, 2, 0}, {2, 2})),
                          -100, Reduction::None).shape(), (Shape{2, 2}));
}

}  // namespace
}  // namespace kiln

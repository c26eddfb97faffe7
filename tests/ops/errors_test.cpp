// Bad input raises kiln::Error naming the op and the offending shapes or values; never a crash.

#include <gtest/gtest.h>

#include <cmath>

#include "ops/ops.hpp"

namespace kiln {
namespace {

Variable z(const Shape& s) { return Variable(zeros(s, kFloat64)); }
Variable ids(std::vector<std::int64_t> v) { return Variable(from_data(v)); }

void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "expected kiln::Error mentioning " << parts[0];
  } catch (const Error& e) {
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

TEST(OpErrors, ShapeMismatchesNameOpAndShapes) {
  expect_error([] { add(z({2, 3}), z({4, 3})); }, {"add", "[2, 3]", "[4, 3]"});
  expect_error([] { mul(z({2}), z({3})); }, {"mul", "[2]", "[3]"});
  expect_error([] { matmul(z({2, 3}), z({4, 5})); }, {"matmul", "[2, 3]", "[4, 5]"});
  expect_error([] { matmul(z({2, 2, 3}), z({3, 3, 1})); }, {"matmul"});
  expect_error([] { linear(z({2, 3}), z({4, 5})); }, {"linear", "[2, 3]", "[4, 5]"});
  expect_error([] { concat({z({2, 3}), z({3, 3})}, 1); }, {"concat", "[3, 3]", "[2, 3]"});
  expect_error([] { stack({z({2}), z({3})}, 0); }, {"stack", "[3]", "[2]"});
  expect_error([] { reshape(z({2, 3}), {4}); }, {"reshape", "[2, 3]"});
  expect_error([] { mse_loss(z({2}), z({3})); }, {"mse_loss", "[2]", "[3]"});
  expect_error([] { layer_norm(z({2, 3}), {4}); }, {"layer_norm", "[2, 3]", "[4]"});
  expect_error([] { where(Variable(zeros({2}, kBool)), z({3}), z({3})); }, {"where", "[2]", "[3]"});
}

TEST(OpErrors, BadAxesAndIndices) {
  expect_error([] { sum(z({2, 3}), {2}); }, {"sum", "dimension 2", "rank 2"});
  expect_error([] { softmax(z({2}), -2); }, {"softmax"});
  expect_error([] { transpose(z({2, 3}), 0, 5); }, {"transpose"});
  expect_error([] { index_select(z({3, 2}), 0, ids({0, 3})); }, {"index_select", "index 3", "size 3"});
  expect_error([] { index_select(z({3, 2}), 0, ids({-1})); }, {"index_select", "-1"});
  expect_error([] { gather(z({2, 2}), 1, Variable(from_data(std::vector<std::int64_t>{0, 5, 1, 1}, {2, 2}))); },
               {"gather", "index 5"});
  expect_error([] { embedding(z({4, 2}), ids({1, 4})); }, {"embedding", "id 4"});
  expect_error([] { nll_loss(z({2, 3}), ids({0, 3})); }, {"nll_loss", "target 3", "3 classes"});
  expect_error([] { cross_entropy(z({2, 3}), Variable(zeros({2}))); }, {"nll_loss", "int64"});
  expect_error([] { narrow(z({4}), 0, 2, 3); }, {"narrow", "start 2", "length 3"});
  expect_error([] { slice(z({4}), 0, 0, 4, 0); }, {"slice", "step"});
  expect_error([] { permute(z({2, 3}), {0, 0}); }, {"permute", "repeats"});
  expect_error([] { var(z({1, 3}), {0}); }, {"var"});
}

// Issue 17: numbers that would give garbage are refused.
TEST(OpErrors, NonFiniteParameters) {
  const Variable x(randn({2, 4}));
  expect_error([&] { layer_norm(x, Shape{4}, Variable(), Variable(), NAN); }, {"layer_norm: eps must be a positive number"});
  expect_error([&] { layer_norm(x, Shape{4}, Variable(), Variable(), -1); }, {"layer_norm: eps must be a positive number"});
}

TEST(OpErrors, DtypeProblems) {
  expect_error([] { add(z({2}), Variable(zeros({2}))); }, {"add", "float64", "float32"});
  expect_error([] { tanh(Variable(zeros({2}, kInt64))); }, {"tanh", "int64"});
  expect_error([] { Variable(zeros({2}, kInt64), true); }, {"requires_grad", "int64"});
  expect_error([] { masked_fill(z({2}), Variable(zeros({2})), 1.0); }, {"masked_fill", "bool"});
}

TEST(OpErrors, OutOfRangeArguments) {
  expect_error([] { dropout(z({2}), 1.5, true); }, {"dropout", "1.5"});
  expect_error([] { clamp(z({2}), 1, -1); }, {"clamp"});
  expect_error([] { chunk(z({2}), 0, 0); }, {"chunk"});
  expect_error([] { Variable v; tanh(v); }, {"tanh", "undefined"});
}

TEST(OpErrors, EmptyTensorsDoNotCrash) {
  Variable e = z({0, 3});
  EXPECT_EQ(sum(e).item(), 0.0);
  EXPECT_EQ(matmul(e, z({3, 2})).shape(), (Shape{0, 2}));
  EXPECT_EQ(matmul(z({2, 0}), z({0, 3})).value().to_vector(), std::vector<double>(6, 0.0));
  EXPECT_EQ(concat({e, e}, 0).shape(), (Shape{0, 3}));
  EXPECT_THROW(mean(e, {0}), Error);
  EXPECT_THROW(max(e, {0}), Error);
}

}  // namespace
}  // namespace kiln

// Note [Gradient hooks]: Variable::register_hook, and Module's backward hooks built on the tape.

#include <gtest/gtest.h>

#include "autograd/grad_mode.hpp"
#include "autograd/tape.hpp"
#include "layers/linear.hpp"
#include "layers/rnn_cell.hpp"
#include "ops/ops.hpp"
#include "tensor/math.hpp"
#include "tensor/storage.hpp"

namespace kiln {
namespace {

Variable param(std::vector<double> v, const Shape& s) { return Variable(from_data(v, s), true); }

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

class Hooks : public ::testing::Test {
 protected:
  void SetUp() override { Tape::current().clear(); }
  void TearDown() override { Tape::current().clear(); }
};

// A leaf used twice gets one call, with its whole gradient for the pass, before it is added to grad().
TEST_F(Hooks, ALeafHookSeesItsSummedGradientOnce) {
  Variable x = param({1, 2}, {2});
  std::vector<std::vector<double>> seen;
  x.register_hook([&](const Tensor& g) { seen.push_back(g.to_vector()); });
  sum(x * 2.0 + x * 3.0).backward();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], (std::vector<double>{5, 5}));
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{5, 5}));
  sum(x * x).backward();  // a second pass: the hook sees this pass's gradient; grad() accumulates
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1], (std::vector<double>{2, 4}));
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{7, 9}));
}

// A hook returning a tensor replaces the gradient that flows on, for a non-leaf and for a leaf.
TEST_F(Hooks, AReturnedGradientReplacesTheOneThatFlowsOn) {
  Variable x = param({1, 2, 3}, {3});
  Variable h = x * 2.0;
  h.register_hook([](const Tensor& g) -> Tensor { return math::scale(g, 10.0); });
  sum(h * h).backward();  // dL/dh = 2h, times 10, times dh/dx = 2: 40 x... with h = 2x: 80 x
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{80, 160, 240}));

  Variable w = param({1, -1}, {2});
  w.register_hook([](const Tensor& g) -> Tensor { return math::scale(g, 0.5); });
  w.register_hook([](const Tensor& g) -> Tensor { return math::add(g, ones(g.shape(), g.dtype())); });  // runs second, on the halved one
  sum(w * 4.0).backward();
  EXPECT_EQ(w.grad().to_vector(), (std::vector<double>{3, 3}));
}

TEST_F(Hooks, ARemovedHookIsNotCalled) {
  Variable x = param({1}, {1});
  int calls = 0;
  auto handle = x.register_hook([&](const Tensor&) { ++calls; });
  sum(x * 3.0).backward();
  handle.remove();
  handle.remove();  // twice: nothing
  sum(x * 3.0).backward();
  EXPECT_EQ(calls, 1);
}

TEST_F(Hooks, AreRefusedWhereNoGradientComesAndWhenTheyReturnTheWrongShape) {
  Variable data(from_data(std::vector<double>{1, 2}, {2}));
  try {
    data.register_hook([](const Tensor&) {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "register_hook: the variable (shape [2]) does not require grad")) << e.what();
  }
  Variable x = param({1, 2}, {2});
  Variable h = x * 2.0;
  h.register_hook([](const Tensor&) -> Tensor { return zeros({3}, kFloat64); });
  try {
    sum(h).backward();
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "returned a gradient of shape float64 [3]")) << e.what();
  }
  // Nothing is left half-done: a second pass without the bad hook works.
  Variable y = x * 3.0;
  sum(y).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{3, 3}));
}

// A throwing hook on a leaf ends backward with its error, and the leaf's next pass starts clean.
TEST_F(Hooks, AThrowingLeafHookLeavesNothingPending) {
  Variable x = param({1, 2}, {2});
  bool fail = true;
  x.register_hook([&](const Tensor&) {
    if (fail) throw Error("the hook failed on purpose");
  });
  EXPECT_THROW(sum(x * 2.0).backward(), Error);
  EXPECT_FALSE(x.grad().defined());
  fail = false;
  sum(x * 2.0).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{2, 2}));
}

// Gradient flow through time, the use hooks are for: dL/dh_t of an unrolled tanh RNN, seen by hooks on
// every h_t, equals what retain_grad keeps, and shrinks going back from the loss (the vanishing gradient).
TEST_F(Hooks, SeeTheGradientOfEveryStepOfAnUnrolledCell) {
  manual_seed(3);
  nn::RNNCell cell(nn::RNNCellOptions(3, 8));
  cell.to(kFloat64);
  std::vector<Tensor> xs;
  for (int t = 0; t < 20; ++t) xs.push_back(randn({2, 3}, kFloat64));
  Variable h(zeros({2, 8}, kFloat64));
  std::vector<Variable> hs;
  std::vector<double> norms(20, -1);
  for (std::int64_t t = 0; t < 20; ++t) {
    h = cell.step(Variable(xs[static_cast<std::size_t>(t)]), {h})[0];
    h.retain_grad();
    h.register_hook([&norms, t](const Tensor& g) { norms[static_cast<std::size_t>(t)] = std::sqrt(math::sum_all(math::mul(g, g))); });
    hs.push_back(h);
  }
  sum(h).backward();
  for (std::size_t t = 0; t < 20; ++t) {
    const Tensor g = hs[t].grad();
    EXPECT_NEAR(norms[t], std::sqrt(math::sum_all(math::mul(g, g))), 1e-12) << "step " << t;
  }
  EXPECT_LT(norms[0], norms[19]);
}

// A module's backward hook gets the gradients of its input and output for each call through operator().
TEST_F(Hooks, AModuleBackwardHookSeesItsInputAndOutputGradients) {
  manual_seed(1);
  nn::Linear lin(nn::LinearOptions(3, 2));
  lin.to(kFloat64);
  Variable x(randn({4, 3}, kFloat64), true);
  std::vector<std::pair<Tensor, Tensor>> calls;
  const std::size_t handle = lin.register_backward_hook([&](const nn::Module& m, const Tensor& gx, const Tensor& gy) {
    EXPECT_EQ(m.type_name(), "Linear");
    calls.emplace_back(gx, gy);
  });
  Variable y = lin(x);
  sum(y * y).backward();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].second.to_vector(), math::scale(y.value(), 2.0).to_vector());  // dL/dy = 2y
  EXPECT_EQ(calls[0].first.to_vector(), x.grad().to_vector());                   // dL/dx
  // An input that needs no gradient: the hook still runs, with no input gradient.
  Variable data(randn({4, 3}, kFloat64));
  sum(lin(data)).backward();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_FALSE(calls[1].first.defined());
  EXPECT_EQ(calls[1].second.to_vector(), std::vector<double>(8, 1.0));
  // forward() runs unobserved; a removed hook is not called.
  sum(lin.forward(x)).backward();
  lin.remove_backward_hook(handle);
  sum(lin(x)).backward();
  EXPECT_EQ(calls.size(), 2u);
}

}  // namespace
}  // namespace kiln

// Note [Gradient-ready hooks]: Variable::register_post_accumulate_grad_hook and queue_backward_callback,
// what data-parallel training overlaps its all-reduces with backward by.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "autograd/tape.hpp"
#include "ops/ops.hpp"
#include "tensor/math.hpp"
#include "tensor/storage.hpp"

namespace kiln {
namespace {

Variable param(std::vector<double> v, const Shape& s) { return Variable(from_data(v, s), true); }

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

class ReadyHooks : public ::testing::Test {
 protected:
  void SetUp() override { Tape::current().clear(); }
  void TearDown() override { Tape::current().clear(); }
};

// y = (x * w1) * w2: the walk finishes w2 before it reaches x * w1 (whose output's hook says when), and
// w1 last; a callback queued by a hook runs after everything, the leaves' gradients complete.
TEST_F(ReadyHooks, RunAsSoonAsTheWalkIsPastALeafsLastUse) {
  Variable x = param({1, 2}, {2}), w1 = param({3, 4}, {2}), w2 = param({5, 6}, {2});
  std::vector<std::string> order;
  Variable a = x * w1;
  a.register_hook([&](const Tensor&) { order.push_back("backward reaches x*w1"); });
  w2.register_post_accumulate_grad_hook([&](const Tensor& g) {
    order.push_back("w2 " + std::to_string(g.to_vector()[1]));
    queue_backward_callback([&] { order.push_back("end: w1 grad " + std::to_string(w1.grad().to_vector()[0])); });
  });
  w1.register_post_accumulate_grad_hook([&](const Tensor& g) { order.push_back("w1 " + std::to_string(g.to_vector()[0])); });
  sum(a * w2).backward();
  EXPECT_EQ(order, (std::vector<std::string>{"w2 8.000000", "backward reaches x*w1", "w1 5.000000", "end: w1 grad 5.000000"}));
}

// A leaf used by several ops is reported once, with its whole gradient; gradients that accumulate over
// passes (no zero_grad) are reported accumulated, as PyTorch does; a leaf the pass never reached is not.
TEST_F(ReadyHooks, SeeTheAccumulatedGradientOncePerPassThatReachedTheLeaf) {
  Variable w = param({1, 2}, {2}), unused = param({1}, {1});
  std::vector<std::vector<double>> seen;
  int unused_calls = 0;
  w.register_post_accumulate_grad_hook([&](const Tensor& g) { seen.push_back(g.to_vector()); });
  unused.register_post_accumulate_grad_hook([&](const Tensor&) { ++unused_calls; });
  Variable side = unused * 2.0;  // recorded, but not part of the loss
  sum(w * 2.0 + w * w).backward();
  sum(w * 3.0).backward();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], (std::vector<double>{4, 6}));
  EXPECT_EQ(seen[1], (std::vector<double>{7, 9}));
  EXPECT_EQ(unused_calls, 0);
  EXPECT_TRUE(side.requires_grad());
}

// register_hook's replacement is what accumulates, and so what the ready hook sees; a removed one is gone;
// a leaf that is itself the root is reported too.
TEST_F(ReadyHooks, SeeWhatRegisterHookLeftAndStopWhenRemoved) {
  Variable w = param({1, 1}, {2});
  std::vector<double> seen;
  w.register_hook([](const Tensor& g) -> Tensor { return math::scale(g, 10.0); });
  auto handle = w.register_post_accumulate_grad_hook([&](const Tensor& g) { seen.push_back(g.to_vector()[0]); });
  sum(w * 3.0).backward();
  EXPECT_EQ(seen, (std::vector<double>{30}));
  w.zero_grad();
  w.backward(ones({2}, kFloat64));
  EXPECT_EQ(seen, (std::vector<double>{30, 10}));
  handle.remove();
  sum(w * 3.0).backward();
  EXPECT_EQ(seen.size(), 2u);
}

TEST_F(ReadyHooks, AreRefusedOffLeavesAndCallbacksOutsideBackward) {
  Variable w = param({1}, {1});
  Variable h = w * 2.0;
  try {
    h.register_post_accumulate_grad_hook([](const Tensor&) {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "only a leaf that requires grad accumulates a gradient (this variable, shape [1], is made by an op)"))
        << e.what();
  }
  try {
    queue_backward_callback([] {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "no backward pass is running on this thread")) << e.what();
  }
}

// A throwing ready hook ends backward with its error; the queued callback does not run, and the next pass
// starts clean (no stale callback, the hook sees only that pass).
TEST_F(ReadyHooks, AThrowingHookEndsThePassAndTheNextStartsClean) {
  Variable w1 = param({1}, {1}), w2 = param({2}, {1});
  bool fail = true;
  int callbacks = 0;
  std::vector<double> seen;
  w2.register_post_accumulate_grad_hook([&](const Tensor&) { queue_backward_callback([&] { ++callbacks; }); });
  w1.register_post_accumulate_grad_hook([&](const Tensor& g) {
    seen.push_back(g.to_vector()[0]);
    if (fail) throw Error("the hook failed on purpose");
  });
  EXPECT_THROW(sum((w1 * 3.0) * w2).backward(), Error);
  EXPECT_EQ(callbacks, 0);
  fail = false;
  w1.zero_grad();
  w2.zero_grad();
  sum((w1 * 3.0) * w2).backward();
  EXPECT_EQ(callbacks, 1);
  EXPECT_EQ(seen, (std::vector<double>{6, 6}));
}

}  // namespace
}  // namespace kiln

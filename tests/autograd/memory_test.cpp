// The tape releases everything after backward; a training loop's memory does not grow.

#include <gtest/gtest.h>

#include "autograd/grad_mode.hpp"
#include "autograd/tape.hpp"
#include "ops/ops.hpp"
#include "tensor/math.hpp"

namespace kiln {
namespace {

TEST(Memory, TrainingLoopDoesNotGrow) {
  Tape::current().clear();
  manual_seed(1);
  Variable w1(normal({16, 32}, 0, 0.3), true), b1(zeros({32}), true), w2(normal({1, 32}, 0, 0.3), true);
  const Tensor x = randn({64, 16});
  const Tensor y = randn({64, 1});
  std::int64_t after_first = -1;
  double first_loss = 0, last_loss = 0;
  for (int step = 0; step < 300; ++step) {
    Variable h = tanh(matmul(Variable(x), w1) + b1);
    Variable loss = mse_loss(linear(h, w2), Variable(y));
    loss.backward();
    {
      NoGradGuard no_grad;
      for (Variable* p : {&w1, &b1, &w2}) {
        Tensor v = p->value();
        math::axpy_(v, -0.05, p->grad());
        p->zero_grad();
      }
    }
    EXPECT_EQ(Tape::current().size(), 0u) << "step " << step;
    if (step == 0) first_loss = loss.item();
    last_loss = loss.item();
    if (step == 1) after_first = memory_stats().allocated_bytes;
    if (step > 1) ASSERT_EQ(memory_stats().allocated_bytes, after_first) << "memory grew at step " << step;
  }
  EXPECT_LT(last_loss, first_loss);
}

TEST(Memory, BuffersAreReusedAcrossSteps) {
  Tape::current().clear();
  Variable w(randn({256, 256}), true);
  for (int i = 0; i < 3; ++i) sum(tanh(w * 2.0)).backward();
  const auto before = memory_stats();
  sum(tanh(w * 2.0)).backward();
  const auto after = memory_stats();
  EXPECT_EQ(after.allocations - before.allocations, after.cache_hits - before.cache_hits)
      << "a repeated step should be served entirely from the cache";
}

}  // namespace
}  // namespace kiln

#include <gtest/gtest.h>

#include "autograd/grad_mode.hpp"
#include "autograd/tape.hpp"
#include "ops/ops.hpp"
#include "tensor/storage.hpp"

namespace kiln {
namespace {

Variable param(std::vector<double> v, const Shape& s = {}) { return Variable(from_data(v, s), true); }

class TapeTest : public ::testing::Test {
 protected:
  void SetUp() override { Tape::current().clear(); }
  void TearDown() override { Tape::current().clear(); }
};

TEST_F(TapeTest, BackwardOfAProduct) {
  Variable a = param({2.0}), b = param({-3.0});
  Variable y = a * b + a;  // dy/da = b + 1, dy/db = a
  y.backward();
  EXPECT_DOUBLE_EQ(a.grad().item(), -2.0);
  EXPECT_DOUBLE_EQ(b.grad().item(), 2.0);
}

TEST_F(TapeTest, RecordsOneEntryPerOpAndReleasesAfterBackward) {
  Variable a = param({1, 2, 3}, {3});
  Variable y = sum(exp(a * 2.0));
  EXPECT_EQ(Tape::current().live_records(), 3u);  // mul, exp, sum
  y.backward();
  EXPECT_EQ(Tape::current().size(), 0u);
}

TEST_F(TapeTest, NothingRecordedWithoutGradInputs) {
  Variable a(from_data(std::vector<double>{1, 2}));
  Variable y = tanh(a) + a;
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(Tape::current().size(), 0u);
}

TEST_F(TapeTest, NoGradGuardStopsRecording) {
  Variable a = param({1, 2}, {2});
  {
    NoGradGuard guard;
    Variable y = a * a;
    EXPECT_FALSE(y.requires_grad());
  }
  EXPECT_EQ(Tape::current().size(), 0u);
  EXPECT_TRUE(grad_enabled());
  EXPECT_TRUE((a * a).requires_grad());
}

// A seed of another dtype is converted to the output's: a float64 seed for a float32 output gives the
// float32 gradients the float32 seed would.
TEST_F(TapeTest, ASeedOfAnotherDtypeIsConverted) {
  Variable w(from_data({1.f, 2.f, 3.f}, {3}), true);
  const Variable y = w * w;
  y.backward(from_data({1.0, 0.5, 2.0}, {3}), /*retain_graph=*/true);
  EXPECT_EQ(w.grad().dtype(), kFloat32);
  EXPECT_EQ(w.grad().to_vector(), (std::vector<double>{2.0, 2.0, 12.0}));
}

TEST_F(TapeTest, GradientsAccumulateAcrossBackwardCalls) {
  Variable a = param({3.0});
  (a * a).backward();
  (a * a).backward();
  EXPECT_DOUBLE_EQ(a.grad().item(), 12.0);
  a.zero_grad();
  EXPECT_FALSE(a.grad().defined());
  (a * 5.0).backward();
  EXPECT_DOUBLE_EQ(a.grad().item(), 5.0);
}

TEST_F(TapeTest, FanOutSumsGradients) {
  Variable a = param({0.5});
  Variable h = tanh(a);
  Variable y = h * h + h;  // dy/dh = 2h + 1
  y.backward();
  const double t = std::tanh(0.5);
  EXPECT_NEAR(a.grad().item(), (2 * t + 1) * (1 - t * t), 1e-15);
}

TEST_F(TapeTest, BackwardTwiceOnFreedGraphIsAClearError) {
  Variable a = param({1.0});
  Variable y = exp(a) * 2.0;
  y.backward();
  try {
    y.backward();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("retain_graph"), std::string::npos) << e.what();
  }
}

TEST_F(TapeTest, BackwardThroughSharedFreedPartIsAClearError) {
  Variable a = param({1.0});
  Variable h = exp(a);
  (h * 2.0).backward();
  Variable y2 = h * 3.0;  // h's record was freed by the first backward
  EXPECT_THROW(y2.backward(), Error);
}

TEST_F(TapeTest, RetainGraphAllowsSecondBackward) {
  Variable a = param({1.0});
  Variable y = exp(a) * 2.0;
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();
  EXPECT_NEAR(a.grad().item(), 4 * std::exp(1.0), 1e-12);
  EXPECT_EQ(Tape::current().size(), 0u);
}

TEST_F(TapeTest, NonScalarNeedsSeed) {
  Variable a = param({1, 2, 3}, {3});
  Variable y = a * 2.0;
  EXPECT_THROW(y.backward(), Error);
  y.backward(from_data(std::vector<double>{1, 10, 100}));
  EXPECT_EQ(a.grad().to_vector(), (std::vector<double>{2, 20, 200}));
}

TEST_F(TapeTest, SeedOfWrongShapeIsRejected) {
  Variable a = param({1, 2, 3}, {3});
  Variable y = a * 2.0;
  EXPECT_THROW(y.backward(from_data(std::vector<double>{1, 2})), Error);
}

TEST_F(TapeTest, DetachCutsTheGraph) {
  Variable a = param({2.0});
  Variable d = (a * a).detach();
  EXPECT_FALSE(d.requires_grad());
  Variable y = d * a;  // only the direct path counts: dy/da = d = 4
  y.backward();
  EXPECT_DOUBLE_EQ(a.grad().item(), 4.0);
}

TEST_F(TapeTest, NonLeafGradOnlyWhenRetained) {
  Variable a = param({2.0});
  Variable h = a * 3.0;
  Variable k = a * 4.0;
  h.retain_grad();
  (h * k).backward();
  EXPECT_DOUBLE_EQ(h.grad().item(), 8.0);
  EXPECT_FALSE(k.grad().defined());
  EXPECT_FALSE(h.is_leaf());
  EXPECT_TRUE(a.is_leaf());
}

TEST_F(TapeTest, BackwardWithoutGradIsAClearError) {
  Variable a(from_data(std::vector<double>{1.0}));
  EXPECT_THROW(a.backward(), Error);
}

TEST_F(TapeTest, UnusedRecordsAreCollectedWithoutBackward) {
  Variable w = param({0.5, -0.5}, {2});
  for (int i = 0; i < 5000; ++i) {
    Variable y = sum(tanh(w * 2.0));  // evaluation without NoGradGuard, result dropped
  }
  EXPECT_LT(Tape::current().size(), 2048u);
}

TEST_F(TapeTest, UnrelatedGraphSurvivesAnotherBackward) {
  Variable a = param({1.0});
  Variable y1 = a * 2.0;
  Variable y2 = a * 5.0;
  y2.backward();
  EXPECT_DOUBLE_EQ(a.grad().item(), 5.0);
  y1.backward();  // y1's record was not part of y2's graph
  EXPECT_DOUBLE_EQ(a.grad().item(), 7.0);
}

TEST_F(TapeTest, LeafGradsDoNotAlias) {
  Variable a = param({1, 2}, {2}), b = param({3, 4}, {2});
  sum(a + b).backward();
  EXPECT_FALSE(a.grad().is_same(b.grad()));
}

// An op's gradient that only the tape holds becomes the leaf's .grad as it is: no copy. With a copy the
// peak of this backward would hold the weight's gradient twice (2 x 16 MiB).
TEST_F(TapeTest, LeafGradientsAreTakenNotCopied) {
  Variable w(zeros({2048, 2048}), true), x(ones({1, 2048}));
  sum(linear(x, w)).backward();  // warms the allocator's cache
  w.zero_grad();
  const Variable loss = sum(linear(x, w));
  empty_cache();
  reset_peak_memory_stats();
  const std::int64_t before = memory_stats().allocated_bytes;
  loss.backward();
  const std::int64_t grown = memory_stats().peak_allocated_bytes - before;
  EXPECT_GE(grown, std::int64_t(16) << 20);
  EXPECT_LT(grown, std::int64_t(20) << 20) << "the weight's gradient was copied on its way to .grad";
  EXPECT_EQ(w.grad().use_count(), 1);
}

TEST_F(TapeTest, SameSeedGivesBitIdenticalGradients) {
  auto run = [] {
    manual_seed(42);
    Variable w(randn({8, 8}), true);
    Variable x(randn({4, 8}));
    sum(tanh(matmul(x, w)) * 3.0).backward();
    return w.grad().clone();
  };
  EXPECT_TRUE(equal(run(), run()));
}

}  // namespace
}  // namespace kiln

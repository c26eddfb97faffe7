#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tensor/random.hpp"

namespace kiln {
namespace {

TEST(Random, SameSeedSameTensors) {
  manual_seed(11);
  Tensor a = randn({100});
  Tensor b = uniform({10}, -2, 2, kFloat64);
  manual_seed(11);
  EXPECT_TRUE(equal(a, randn({100})));
  EXPECT_TRUE(equal(b, uniform({10}, -2, 2, kFloat64)));
}

TEST(Random, DistributionsHaveTheRightMoments) {
  Generator g(5);
  const auto n = normal({20000}, 1.0, 2.0, kFloat64, &g).to_vector();
  double m = 0, v = 0;
  for (double x : n) m += x;
  m /= static_cast<double>(n.size());
  for (double x : n) v += (x - m) * (x - m);
  v /= static_cast<double>(n.size());
  EXPECT_NEAR(m, 1.0, 0.05);
  EXPECT_NEAR(v, 4.0, 0.15);
  for (double x : uniform({1000}, -1, 3, kFloat64, &g).to_vector()) {
    EXPECT_GE(x, -1);
    EXPECT_LT(x, 3);
  }
  for (double x : randint(2, 5, {1000}, &g).to_vector()) {
    EXPECT_GE(x, 2);
    EXPECT_LT(x, 5);
  }
}

TEST(Random, BadArgumentsAreRejected) {
  EXPECT_THROW(uniform({2}, 1, 0), Error);
  EXPECT_THROW(normal({2}, 0, -1), Error);
  EXPECT_THROW(bernoulli({2}, 1.5), Error);
  EXPECT_THROW(randint(3, 3, {2}), Error);
}

TEST(Random, AGeneratorRestoredFromItsStateDrawsTheSameNumbers) {
  Generator gen(11);
  gen.next_normal();  // leaves the second Box-Muller value waiting: part of the state
  const std::string state = gen.state();
  std::vector<double> first;
  for (int i = 0; i < 5; ++i) first.push_back(i % 2 ? gen.next_normal() : gen.next_double());
  Generator other(99);
  other.set_state(state);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(i % 2 ? other.next_normal() : other.next_double(), first[static_cast<std::size_t>(i)]);
  const std::string before = other.state();
  for (const std::string& bad : std::vector<std::string>{"", "1 2 3", state + " extra", state.substr(0, state.size() / 2)})
    EXPECT_THROW(other.set_state(bad), Error) << bad.substr(0, 30);
  EXPECT_EQ(other.state(), before);
}

}  // namespace
}  // namespace kiln

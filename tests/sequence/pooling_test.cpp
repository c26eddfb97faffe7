// SequencePool: each mode's value with and without lengths, and its finite-difference check.

#include <gtest/gtest.h>

#include "layers/gradcheck_module.hpp"
#include "sequence/pooling.hpp"
#include "tensor/error.hpp"

namespace kiln::nn {
namespace {

TEST(SequencePool, PoolsEachSequenceOverItsOwnSteps) {
  // x [2, 3, 1]: 1 2 3 and 4 8 6; the second sequence is 2 long.
  const Variable x(from_data(std::vector<double>{1, 2, 3, 4, 8, 6}, {2, 3, 1}));
  const Variable lengths(from_data(std::vector<std::int64_t>{3, 2}));
  EXPECT_EQ(SequencePool(PoolMode::Mean).forward(x).value().to_vector(), (std::vector<double>{2, 6}));
  EXPECT_EQ(SequencePool(PoolMode::Mean).forward(x, lengths).value().to_vector(), (std::vector<double>{2, 6}));
  EXPECT_EQ(SequencePool(PoolMode::Last).forward(x).value().to_vector(), (std::vector<double>{3, 6}));
  EXPECT_EQ(SequencePool(PoolMode::Last).forward(x, lengths).value().to_vector(), (std::vector<double>{3, 8}));
  EXPECT_EQ(SequencePool(PoolMode::Max).forward(x).value().to_vector(), (std::vector<double>{3, 8}));
  const Variable y(from_data(std::vector<double>{1, 2, 3, 4, 5, 9}, {2, 3, 1}));
  EXPECT_EQ(SequencePool(PoolMode::Max).forward(y, lengths).value().to_vector(), (std::vector<double>{3, 5}));
  EXPECT_EQ(SequencePool(PoolMode::Mean).forward(y, lengths).value().to_vector(), (std::vector<double>{2, 4.5}));
}

TEST(SequencePool, RefusesLengthsOutsideTheSequence) {
  const Variable x(zeros({2, 3, 1}, kFloat64));
  EXPECT_THROW(SequencePool().forward(x, Variable(from_data(std::vector<std::int64_t>{0, 2}))), Error);
  EXPECT_THROW(SequencePool().forward(x, Variable(from_data(std::vector<std::int64_t>{4, 2}))), Error);
  EXPECT_THROW(SequencePool().forward(Variable(zeros({2, 3}, kFloat64))), Error);
}

TEST(SequencePool, GradientsMatchFiniteDifferencesInEveryMode) {
  const Tensor x = randn({3, 4, 2}, kFloat64);
  const Variable lengths(from_data(std::vector<std::int64_t>{4, 1, 3}));
  for (PoolMode mode : {PoolMode::Last, PoolMode::Mean, PoolMode::Max}) {
    SequencePool pool(mode);
    const auto r = gradcheck_module(pool, {Variable(x, true)}, [&](const std::vector<Variable>& in) { return pool.forward(in[0], lengths); });
    EXPECT_TRUE(r.ok) << pool.extra_repr() << ": " << r.message;
  }
}

}  // namespace
}  // namespace kiln::nn

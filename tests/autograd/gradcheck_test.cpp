#include <gtest/gtest.h>

#include "autograd/gradcheck.hpp"
#include "ops/ops.hpp"

namespace kiln {
namespace {

// gradcheck on a user-written composite, as a researcher would call it on a new cell.
TEST(Gradcheck, UserCellInFloat32InputsIsCheckedInFloat64) {
  manual_seed(3);
  Variable x(randn({2, 3}), true), h(randn({2, 4}), true);
  Variable w(normal({4, 3}, 0, 0.5), true), u(normal({4, 4}, 0, 0.5), true);
  auto cell = [](const std::vector<Variable>& v) {
    Variable z = sigmoid(linear(v[0], v[2]) + linear(v[1], v[3]));
    return z * tanh(v[1]) + (1.0 - z) * v[1];
  };
  const auto r = gradcheck(cell, {x, h, w, u});
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.checked, 6 + 8 + 12 + 16);
  EXPECT_FALSE(x.grad().defined()) << "gradcheck must not touch the caller's variables";
}

TEST(Gradcheck, SkipsInputsWithoutGrad) {
  Variable a(randn({3}, kFloat64), true), b(randn({3}, kFloat64));
  const auto r = gradcheck([](const std::vector<Variable>& v) { return v[0] * v[1]; }, {a, b});
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.checked, 3);
}

TEST(Gradcheck, RefusesWhenNothingRequiresGrad) {
  Variable a(randn({3}, kFloat64));
  EXPECT_THROW(gradcheck([](const std::vector<Variable>& v) { return v[0] * 2.0; }, {a}), Error);
}

}  // namespace
}  // namespace kiln

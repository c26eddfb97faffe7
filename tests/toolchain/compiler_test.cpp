// Guards against the compiler miscompiling the code Kiln is made of (Note [GCC 12 SLP miscompile]).

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

namespace {

__attribute__((noinline)) std::vector<double> keep(const std::vector<double>& v) { return v; }

TEST(Compiler, InitializerListWithRepeatedValueAndZeros) {
  const std::vector<double> v = keep({std::log(2.0), std::log(2.0), 0, 0});
  EXPECT_EQ(v[2], 0.0);
  EXPECT_EQ(v[3], 0.0);
}

}  // namespace

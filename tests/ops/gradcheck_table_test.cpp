// Runs every case of the gradient-check table (ops/op_checks.cpp). CatalogueCoverage fails when an op
// declared in the catalogue (ops/ops.hpp) has no case.

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "autograd/gradcheck.hpp"
#include "autograd/tape.hpp"
#include "ops/op_checks.hpp"
#include "ops/ops.hpp"

namespace kiln {

void PrintTo(const OpCheck& check, std::ostream* os) { *os << check.name; }

namespace {

using In = std::vector<Variable>;

class GradcheckTable : public ::testing::TestWithParam<OpCheck> {};

TEST_P(GradcheckTable, MatchesFiniteDifferences) {
  const OpCheck& check = GetParam();
  const GradcheckResult r = run_op_check(check);
  EXPECT_TRUE(r.ok) << check.name << ": " << r.message;
  EXPECT_GT(r.checked, 0);
}

// Every op supports float32 too: the same case in float32 matches float64 to float32 precision.
TEST_P(GradcheckTable, Float32MatchesFloat64) {
  const OpCheck& check = GetParam();
  const std::vector<Variable> in64 = check.inputs();
  std::vector<Variable> in32;
  for (const Variable& v : in64)
    in32.emplace_back(is_floating(v.dtype()) ? v.value().to(kFloat32) : v.value(), v.requires_grad());
  Variable y64 = check.fn(in64), y32 = check.fn(in32);
  ASSERT_EQ(y32.dtype(), kFloat32) << check.name;
  ASSERT_EQ(y32.shape(), y64.shape()) << check.name;
  EXPECT_TRUE(allclose(y32.value(), y64.value(), 1e-5, 1e-5))
      << check.name << ": max |float32 - float64| = " << max_abs_diff(y32.value(), y64.value().to(kFloat32));
  // Gradients too, through the same projection in both precisions.
  const Tensor seed = randn(y64.shape(), kFloat64);
  y64.backward(seed);
  y32.backward(seed.to(kFloat32));
  for (std::size_t i = 0; i < in64.size(); ++i) {
    if (!in64[i].requires_grad()) continue;
    EXPECT_TRUE(allclose(in32[i].grad(), in64[i].grad(), 1e-4, 1e-4))
        << check.name << " input " << i << ": max |float32 - float64| = "
        << max_abs_diff(in32[i].grad().to(kFloat64), in64[i].grad());
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, GradcheckTable, ::testing::ValuesIn(op_checks()),
                         [](const ::testing::TestParamInfo<OpCheck>& info) { return info.param.name; });

// Every op in the catalogue has at least one row.
TEST(GradcheckTable, CatalogueCoverage) {
  std::ifstream in(std::string(KILN_SOURCE_DIR) + "/ops/ops.hpp");
  ASSERT_TRUE(in) << "cannot read ops/ops.hpp";
  std::stringstream text;
  text << in.rdbuf();
  const std::string src = text.str();
  const std::regex decl(R"((?:^|\n)(?:Variable|std::vector<Variable>) ([a-z_0-9]+)\()");
  std::set<std::string> declared, covered;
  for (std::sregex_iterator it(src.begin(), src.end(), decl), end; it != end; ++it) declared.insert((*it)[1]);
  for (const OpCheck& check : op_checks()) covered.insert(check.op);
  ASSERT_GT(declared.size(), 40u) << "the catalogue parser found too few ops";
  for (const auto& op : declared) EXPECT_TRUE(covered.count(op)) << "op '" << op << "' has no gradient-check row";
}

// A deliberately wrong backward (d/dx x^2 taken as x instead of 2x) must be caught.
Variable bad_square(const Variable& x) {
  Tensor xv = x.value();
  Tensor y = xv.clone();
  double* p = y.data<double>();
  const double* q = xv.data<double>();
  for (std::int64_t i = 0; i < y.numel(); ++i) p[i] = q[i] * q[i];
  return record("bad_square", y, {x}, [xv](const Tensor& dy, Grads& g) {
    Tensor dx = dy.clone();
    double* d = dx.data<double>();
    const double* v = xv.data<double>();
    for (std::int64_t i = 0; i < dx.numel(); ++i) d[i] *= v[i];  // wrong: missing the factor 2
    g.add(0, dx);
  });
}

TEST(Gradcheck, CatchesWrongBackward) {
  const auto r = gradcheck([](const In& v) { return bad_square(v[0]); }, {Variable(randn({3, 2}, kFloat64), true)});
  EXPECT_FALSE(r.ok) << r.message;
  EXPECT_NE(r.message.find("FAILED"), std::string::npos);
  EXPECT_NEAR(r.numeric, 2 * r.analytic, 1e-6);
}

}  // namespace
}  // namespace kiln

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

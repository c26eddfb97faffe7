#include <gtest/gtest.h>

#include "autograd/grad_mode.hpp"
#include "autograd/tape.hpp"
#include "ops/ops.hpp"

namespace kiln {
namespace {

TEST(Anomaly, ForwardNaNNamesTheOp) {
  DetectAnomalyGuard guard;
  Variable x(from_data(std::vector<double>{-1.0, 4.0}), true);
  try {
    Variable y = sqrt(x);
    FAIL() << "expected an anomaly error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'sqrt'"), std::string::npos) << e.what();
  }
  Tape::current().clear();
}

TEST(Anomaly, BackwardInfNamesTheOp) {
  Variable x(from_data(std::vector<double>{0.0, 4.0}), true);
  Variable y = sum(sqrt(x));  // forward is finite; d sqrt/dx at 0 is Inf
  DetectAnomalyGuard guard;
  try {
    y.backward();
    FAIL() << "expected an anomaly error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("backward of 'sqrt'"), std::string::npos) << e.what();
  }
  Tape::current().clear();
}

TEST(Anomaly, OffByDefault) {
  EXPECT_FALSE(anomaly_enabled());
  Variable x(from_data(std::vector<double>{-1.0}), true);
  EXPECT_TRUE(std::isnan(sqrt(x).item()));
  Tape::current().clear();
}

}  // namespace
}  // namespace kiln

// Note [Compiled schedule]: a compiled cell's kernel proven by check_plugin against the cell's generic
// graph (outputs and every gradient, float32 and float64, both directions, lengths, without biases),
// and one that cannot compile says why.

#include <gtest/gtest.h>

#include "fusion/compiled_kernel.hpp"
#include "layers/cell_registry.hpp"

namespace kiln::plugins {
namespace {

class CompiledKernels : public ::testing::TestWithParam<std::string> {};

TEST_P(CompiledKernels, PassCheckPluginAgainstTheGenericGraph) {
  const CellMaker make = reference_cell(GetParam());
  ASSERT_TRUE(make);
  std::string why;
  const auto k = compiled_kernel(GetParam(), make, &why);
  ASSERT_NE(k, nullptr) << why;
  CheckOptions o;
  o.realistic = false;  // check_plugin's grid; the realistic sizes run in CI's kiln check-plugin
  const CheckReport r = check_plugin(*k, o, make);
  EXPECT_TRUE(r.passed()) << r.to_string();
  EXPECT_GT(r.cases, 100);
  EXPECT_TRUE(r.skipped.empty()) << r.skipped.front();
}

INSTANTIATE_TEST_SUITE_P(Cells, CompiledKernels,
                         ::testing::Values("rnn_tanh", "lstm", "gru", "gru_reset_before", "peephole_lstm", "mgu", "lstm_nig", "lstm_nfg",
                                           "lstm_nog", "lstm_niaf", "lstm_noaf", "lstm_cifg", "lstm_np", "lstm_fgr"));

TEST(CompiledKernel, ACellThatDoesNotCompileSaysWhy) {
  std::string why;
  EXPECT_EQ(compiled_kernel("layer_norm_lstm", reference_cell("layer_norm_lstm"), &why), nullptr);
  EXPECT_NE(why.find("LayerNormLSTMCell does not compile: op 'layer_norm'"), std::string::npos) << why;
}

}  // namespace
}  // namespace kiln::plugins

namespace kiln::plugins {
namespace {

// check_plugin's realistic sizes: 50 steps span several of the backward's blocks of steps (Note [Compiled
// schedule]), hidden up to 1024, lengths and both directions.
TEST(CompiledKernel, PassesAtRealisticSizes) {
  const CellMaker make = reference_cell("lstm_cifg");
  const auto k = compiled_kernel("lstm_cifg", make);
  ASSERT_NE(k, nullptr);
  const CheckReport r = check_plugin(*k, CheckOptions{}, make);
  EXPECT_TRUE(r.passed()) << r.to_string();
}

}  // namespace
}  // namespace kiln::plugins

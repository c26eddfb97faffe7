#include <gtest/gtest.h>

#include "layers/recurrent.hpp"
#include "ops/ops.hpp"
#include "plugins/registry.hpp"

namespace kiln::plugins {
namespace {

TEST(Registry, BuiltinsAreRegisteredOnce) {
  const auto kernels = Registry::global().kernels();
  ASSERT_EQ(kernels.size(), 1u);
  EXPECT_EQ(kernels[0]->name, "lstm");
  EXPECT_EQ(kernels[0]->plugin, "builtin");
}

TEST(Registry, FindsByCellAndSaysWhyNot) {
  const nn::LSTMCell lstm(nn::LSTMCellOptions(3, 4));
  const nn::LSTMCell single(nn::LSTMCellOptions(3, 4).single_bias(true));
  const nn::GRUCell gru(nn::GRUCellOptions(3, 4));
  std::string why;
  EXPECT_NE(Registry::global().find(lstm), nullptr);
  EXPECT_EQ(Registry::global().find(single, &why), nullptr);
  EXPECT_NE(why.find("two biases"), std::string::npos) << why;
  EXPECT_EQ(Registry::global().find(gru, &why), nullptr);
  EXPECT_NE(why.find("runs LSTMCell only, not GRUCell"), std::string::npos) << why;
}

TEST(Registry, DuplicateNamesAreRefused) {
  Registry r;
  register_builtin(r);
  try {
    register_builtin(r);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("kernel 'lstm' from 'builtin' is already registered"), std::string::npos) << e.what();
  }
  EXPECT_THROW(r.add(RecurrentKernel{"", "x", "", nullptr, nullptr}), Error);
}

TEST(Registry, AnEmptyRegistryFindsNothing) {
  Registry r;
  std::string why;
  EXPECT_EQ(r.find(nn::LSTMCell(nn::LSTMCellOptions(2, 2)), &why), nullptr);
  EXPECT_EQ(why, "no fused kernels are registered");
}

}  // namespace
}  // namespace kiln::plugins

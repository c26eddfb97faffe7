#include <gtest/gtest.h>

#include "plugins/builtin/builtin.hpp"
#include "fusion/check_plugin.hpp"

namespace kiln::plugins {
namespace {

// Every built-in kernel equals its generic cell over the whole grid: outputs, final states and the
// gradient of x, the initial states and every parameter, in float32 and float64.
class BuiltinKernels : public ::testing::TestWithParam<std::string> {};

TEST_P(BuiltinKernels, MatchTheGenericGraph) {
  const Kernel* k = Registry::global().get(GetParam());
  ASSERT_NE(k, nullptr);
  const CheckReport report = check_plugin(*k);
  EXPECT_TRUE(report.passed()) << report.to_string();
  EXPECT_EQ(report.cases, 323);  // 320 small, 3 realistic (Note [Realistic sizes])
  EXPECT_TRUE(report.skipped.empty());
  const std::size_t params = 4, states = static_cast<std::size_t>(k->abi.state_count);
  EXPECT_EQ(report.tensors.size(), 3 * (1 + states + 1 + states + params));  // per dtype and f32 large: output, finals, grads
}

INSTANTIATE_TEST_SUITE_P(Plugins, BuiltinKernels,
                         ::testing::Values("lstm", "gru", "gru_reset_before", "rnn_tanh", "rnn_relu"));

// A kernel whose backward is slightly wrong in one gradient fails the check, and the report names it.
const kiln_recurrent_kernel& real() { return builtin::lstm_kernel(); }

int broken_backward(const kiln_host* host, const kiln_recurrent_problem* p, const kiln_tensor* x, const kiln_tensor* states,
                    const kiln_tensor* params, void* saved, const kiln_tensor* dy, const kiln_tensor* d_final,
                    kiln_tensor* dx, kiln_tensor* d_states, kiln_tensor* d_params, void* work, char* err, size_t size) {
  const int rc = real().backward(host, p, x, states, params, saved, dy, d_final, dx, d_states, d_params, work, err, size);
  if (d_params[1].data != nullptr) {  // weight_hh's gradient, off by 1% in one element
    if (p->dtype == KILN_FLOAT32)
      static_cast<float*>(d_params[1].data)[0] *= 1.01f;
    else
      static_cast<double*>(d_params[1].data)[0] *= 1.01;
  }
  return rc;
}

TEST(CheckPlugin, ABrokenKernelFailsAndTheReportSaysWhere) {
  kiln_recurrent_kernel k = real();
  k.name = "broken_lstm";
  k.backward = &broken_backward;
  const std::uint32_t flags[] = {KILN_KERNEL_STRIDED_SEQUENCES | KILN_KERNEL_BACKWARD_READS_Y};  // the real kernel's
  const kiln_plugin plugin{KILN_PLUGIN_ABI_VERSION, "broken", "0", 1, &k, 0, nullptr, flags};
  Registry r;
  r.add(plugin, "test");
  const CheckReport report = check_plugin(*r.get("broken_lstm"), {}, reference_cell("lstm"));
  EXPECT_FALSE(report.passed());
  for (const auto& t : report.tensors) {
    const bool should_fail = t.tensor == "grad weight_hh";
    EXPECT_EQ(t.passed(), !should_fail) << t.tensor << " " << t.dtype << " worst " << t.worst;
  }
  const std::string text = report.to_string();
  EXPECT_NE(text.find("grad weight_hh"), std::string::npos);
  EXPECT_NE(text.find("<-- FAIL"), std::string::npos);
  EXPECT_NE(text.find("\nFAIL\n"), std::string::npos) << text;
}

TEST(CheckPlugin, NeedsARegisteredCellToCompareWith) {
  kiln_recurrent_kernel k = real();
  k.name = "unknown_cell";
  const kiln_plugin plugin{KILN_PLUGIN_ABI_VERSION, "p", "0", 1, &k, 0, nullptr};
  Registry r;
  r.add(plugin, "test");
  EXPECT_THROW(check_plugin(*r.get("unknown_cell")), Error);
  EXPECT_EQ(reference_cell("unknown_cell"), nullptr);
}

// A kernel wrong only at realistic sizes (its weight_hh gradient 61% off from hidden 64 up, as a kernel with
// a bug in a code path only wide problems take) passes the small grid and fails the realistic one.
int wrong_when_wide(const kiln_host* host, const kiln_recurrent_problem* p, const kiln_tensor* x, const kiln_tensor* states,
                    const kiln_tensor* params, void* saved, const kiln_tensor* dy, const kiln_tensor* d_final,
                    kiln_tensor* dx, kiln_tensor* d_states, kiln_tensor* d_params, void* work, char* err, size_t size) {
  const int rc = real().backward(host, p, x, states, params, saved, dy, d_final, dx, d_states, d_params, work, err, size);
  if (p->hidden_size >= 64 && d_params[1].data != nullptr && p->dtype == KILN_FLOAT32) {
    float* d = static_cast<float*>(d_params[1].data);
    for (std::int64_t i = 0; i < 4 * p->hidden_size * p->hidden_size; ++i) d[i] *= 1.61f;
  }
  return rc;
}

TEST(CheckPlugin, AKernelWrongOnlyAtRealisticSizesFails) {
  kiln_recurrent_kernel k = real();
  k.name = "wide_bug_lstm";
  k.backward = &wrong_when_wide;
  const std::uint32_t flags[] = {KILN_KERNEL_STRIDED_SEQUENCES | KILN_KERNEL_BACKWARD_READS_Y};
  const kiln_plugin plugin{KILN_PLUGIN_ABI_VERSION, "wide_bug", "0", 1, &k, 0, nullptr, flags};
  Registry r;
  r.add(plugin, "test");
  CheckOptions small;
  small.realistic = false;
  EXPECT_TRUE(check_plugin(*r.get("wide_bug_lstm"), small, reference_cell("lstm")).passed());
  const CheckReport report = check_plugin(*r.get("wide_bug_lstm"), {}, reference_cell("lstm"));
  EXPECT_FALSE(report.passed());
  EXPECT_NE(report.first_failure().find("grad weight_hh (f32 large)"), std::string::npos) << report.to_string();
}

}  // namespace
}  // namespace kiln::plugins

#include <gtest/gtest.h>

#include <cstring>

#include "sequence/recurrent.hpp"
#include "sequence/research_layers.hpp"
#include "ops/ops.hpp"
#include "plugins/builtin/builtin.hpp"
#include "fusion/fused_recurrent.hpp"
#include "plugins/registry.hpp"

namespace kiln::plugins {
namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(Registry, BuiltinsAreRegisteredOnce) {
  std::vector<std::string> names;
  for (const auto* k : Registry::global().kernels())
    if (k->plugin == "builtin") names.push_back(k->name);
  EXPECT_EQ(names, (std::vector<std::string>{"lstm", "gru", "gru_reset_before", "rnn_tanh", "rnn_relu", "layer_norm_lstm", "peephole_lstm"}));
  EXPECT_EQ(Registry::global().get("lstm")->op, "fused_lstm");
}

kiln_plugin plugin_with(const kiln_recurrent_kernel* kernels, int count, std::uint32_t version = KILN_PLUGIN_ABI_VERSION) {
  return kiln_plugin{version, "test", "1", count, kernels, 0, nullptr, nullptr};
}

TEST(Registry, RefusesDuplicatesWrongVersionsAndMalformedKernelsWholesale) {
  Registry r;
  register_builtin(r);
  const std::size_t before = r.kernels().size();
  try {
    register_builtin(r);
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "plugin 'builtin' (builtin): kernel 'lstm' is already registered by plugin 'builtin'")) << e.what();
  }
  kiln_recurrent_kernel k = builtin::lstm_kernel();
  k.name = "lstm_copy";
  const kiln_plugin wrong = plugin_with(&k, 1, 7);
  try {
    r.add(wrong, "wrong.so");
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "plugin 'test' (wrong.so): built for plugin interface version 7, this Kiln speaks versions 1 to 5"))
        << e.what();
  }
  kiln_recurrent_kernel two[2] = {k, k};  // the same new name twice: nothing is added
  EXPECT_THROW(r.add(plugin_with(two, 2), "twice.so"), Error);
  two[1].name = "other";
  two[1].forward = nullptr;
  try {
    r.add(plugin_with(two, 2), "malformed.so");
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "kernel 'other' lacks one of supports, saved_bytes, work_bytes, forward, backward")) << e.what();
  }
  two[1] = k;
  two[1].name = "other";
  two[1].state_count = 3;
  EXPECT_THROW(r.add(plugin_with(two, 2), "states.so"), Error);
  EXPECT_EQ(r.kernels().size(), before);
  EXPECT_EQ(r.get("lstm_copy"), nullptr);
  r.add(plugin_with(&k, 1), "copy.so");
  EXPECT_EQ(r.get("lstm_copy")->origin, "copy.so");
}

// Interface version 3's kernel_flags: read per kernel, refused when unknown to the plugin's version
// (KILN_KERNEL_BACKWARD_READS_Y came with version 4), and not read at all from an older plugin (whose
// struct ends before them).
TEST(Registry, ReadsKernelFlagsFromVersion3On) {
  Registry r;
  kiln_recurrent_kernel k[2] = {builtin::lstm_kernel(), builtin::gru_kernel()};
  k[0].name = "strided", k[1].name = "plain";
  const std::uint32_t flags[] = {KILN_KERNEL_STRIDED_SEQUENCES, 0};
  kiln_plugin v3 = plugin_with(k, 2, 3);
  v3.kernel_flags = flags;
  r.add(v3, "v3.so");
  EXPECT_EQ(r.get("strided")->flags, std::uint32_t{KILN_KERNEL_STRIDED_SEQUENCES});
  EXPECT_EQ(r.get("plain")->flags, 0u);

  kiln_recurrent_kernel reads = builtin::lstm_kernel();
  reads.name = "reads_y";
  const std::uint32_t both[] = {KILN_KERNEL_STRIDED_SEQUENCES | KILN_KERNEL_BACKWARD_READS_Y};
  kiln_plugin v4 = plugin_with(&reads, 1, 4);
  v4.kernel_flags = both;
  r.add(v4, "v4.so");
  EXPECT_EQ(r.get("reads_y")->flags, both[0]);

  kiln_recurrent_kernel old = builtin::lstm_kernel();
  old.name = "old";
  kiln_plugin v2 = plugin_with(&old, 1, 2);
  v2.kernel_flags = flags;  // beyond a version 2 plugin's struct: never read
  r.add(v2, "v2.so");
  EXPECT_EQ(r.get("old")->flags, 0u);

  auto refusal = [&](const char* name, std::uint32_t version, const std::uint32_t* f) {
    kiln_recurrent_kernel odd = builtin::lstm_kernel();
    odd.name = name;
    kiln_plugin bad = plugin_with(&odd, 1, version);
    bad.kernel_flags = f;
    try {
      r.add(bad, "odd.so");
    } catch (const Error& e) {
      EXPECT_EQ(r.get(name), nullptr);
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  const std::uint32_t unknown[] = {0x10};
  EXPECT_TRUE(contains(refusal("odd", 4, unknown), "plugin 'test' (odd.so): kernel 'odd' declares flags 0x10 unknown to interface version 4"));
  EXPECT_TRUE(contains(refusal("early", 3, both), "kernel 'early' declares flags 0x2 unknown to interface version 3"));
  // KILN_KERNEL_REPORTS_DH came with version 5.
  const std::uint32_t reports[] = {KILN_KERNEL_REPORTS_DH};
  EXPECT_TRUE(contains(refusal("early_dh", 4, reports), "kernel 'early_dh' declares flags 0x4 unknown to interface version 4"));
  kiln_recurrent_kernel dh = builtin::lstm_kernel();
  dh.name = "reports_dh";
  kiln_plugin v5 = plugin_with(&dh, 1, 5);
  v5.kernel_flags = reports;
  r.add(v5, "v5.so");
  EXPECT_EQ(r.get("reports_dh")->flags, std::uint32_t{KILN_KERNEL_REPORTS_DH});
}

// A kernel made with the SDK's skeleton reads y in backward: listed without kRecurrentKernelFlags, it
// is never handed y, and its backward says what to do instead of reading a null pointer.
TEST(Registry, ASkeletonKernelWithoutItsFlagsSaysSoInBackward) {
  Registry r;
  kiln_recurrent_kernel k = builtin::lstm_kernel();
  k.name = "lstm";
  r.add(plugin_with(&k, 1), "noflags.so");
  nn::LSTMCell cell(nn::LSTMCellOptions(3, 4));
  nn::State state = cell.zero_state(2, kFloat32);
  Variable x = Variable(zeros({5, 2, 3})).requires_grad_();
  Variable y = run_fused(*r.get("lstm"), x, {{&cell, &state, false}}, {});
  try {
    sum(y).backward();
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "fused kernel 'lstm' from plugin 'test' (noflags.so) failed in backward: lstm: backward needs "
                                   "forward's y (problem->y): list kiln::sdk::kRecurrentKernelFlags in the plugin's kernel_flags"))
        << e.what();
  }
}

// Note [Plugin answers]: sizes and messages a kernel hands back are checked, never trusted.
std::size_t huge_bytes(const kiln_recurrent_problem*) { return ~std::size_t{0}; }
std::size_t beyond_memory(const kiln_recurrent_problem*) { return std::size_t{1} << 62; }
int declines_unterminated(const kiln_recurrent_problem*, char* why, size_t size) {
  std::memset(why, 'x', size);  // no NUL anywhere
  why[0] = '\a';               // and a control character
  return 1;
}
int fails_unterminated(const kiln_host*, const kiln_recurrent_problem*, const kiln_tensor*, const kiln_tensor*, const kiln_tensor*,
                       kiln_tensor*, kiln_tensor*, void*, void*, char* err, size_t size) {
  std::memset(err, 'e', size);
  return 1;
}

std::string run_error(kiln_recurrent_kernel k) {
  Registry r;
  k.name = "lstm";
  r.add(plugin_with(&k, 1), "hostile.so");
  nn::LSTMCell cell(nn::LSTMCellOptions(3, 4));
  nn::State state = cell.zero_state(2, kFloat32);
  Variable x = Variable(zeros({5, 2, 3})).requires_grad_();
  try {
    run_fused(*r.get("lstm"), x, {{&cell, &state, false}}, {});
  } catch (const Error& e) {
    return e.what();
  }
  return "ran";
}

TEST(Registry, SizesAndMessagesFromAKernelAreChecked) {
  kiln_recurrent_kernel k = builtin::lstm_kernel();
  k.saved_bytes = huge_bytes;  // rounded up to whole elements, this once wrapped to an empty buffer
  EXPECT_TRUE(contains(run_error(k), "fused kernel 'lstm' from plugin 'test' (hostile.so): saved_bytes asks for "
                                     "18446744073709551615 bytes, more than any tensor can hold")) << run_error(k);
  k = builtin::lstm_kernel();
  k.work_bytes = beyond_memory;
  EXPECT_TRUE(contains(run_error(k), "(hostile.so): work_bytes asks for 4611686018427387904 bytes: out of memory")) << run_error(k);
  k = builtin::lstm_kernel();
  k.supports = declines_unterminated;
  const std::string declined = run_error(k);
  EXPECT_TRUE(contains(declined, "does not run this call: ?xxx")) << declined;
  EXPECT_LT(declined.size(), 700u);
  k = builtin::lstm_kernel();
  k.forward = fails_unterminated;
  const std::string failed = run_error(k);
  EXPECT_TRUE(contains(failed, "failed in forward: eeee")) << failed.substr(0, 200);
  EXPECT_LT(failed.size(), 1200u);
}

TEST(Registry, GrowsItsGenerationWithEveryPlugin) {
  Registry r;
  EXPECT_EQ(r.generation(), 0u);
  register_builtin(r);
  EXPECT_EQ(r.generation(), 1u);
}

}  // namespace
}  // namespace kiln::plugins

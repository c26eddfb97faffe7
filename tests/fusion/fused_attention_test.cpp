// The fused attention kernel: check_attention_plugin passes for the built-in one and fails for a broken
// one; MultiheadAttention on the fused path equals the generic graph (outputs and every gradient) in every
// layout, projection and mask; dropout is deterministic and its gradient right; the registry takes
// version 1 plugins and refuses malformed attention kernels.

#include <gtest/gtest.h>

#include "autograd/grad_mode.hpp"
#include "autograd/gradcheck.hpp"
#include "sequence/attention.hpp"
#include "ops/ops.hpp"
#include "plugins/builtin/builtin.hpp"
#include "fusion/check_plugin.hpp"
#include "fusion/fused_attention.hpp"
#include "tensor/math.hpp"

namespace kiln::plugins {
namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(FusedAttention, BuiltinKernelPassesCheck) {
  const AttentionKernel* k = Registry::global().attention("sdpa");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->plugin, "builtin");
  const CheckReport r = check_attention_plugin(*k);
  EXPECT_TRUE(r.passed()) << r.to_string();
  EXPECT_EQ(r.cases, 144);
  EXPECT_TRUE(r.skipped.empty());
}

// A kernel whose output is 1% off in one element is caught and named.
kiln_attention_kernel broken() {
  kiln_attention_kernel k = builtin::sdpa_kernel();
  k.name = "sdpa_broken";
  k.forward = [](const kiln_host* host, const kiln_attention_problem* p, const kiln_tensor* q, const kiln_tensor* kk,
                 const kiln_tensor* v, const kiln_tensor* masks, kiln_tensor* out, kiln_tensor* weights, void* saved, void* work,
                 char* err, size_t err_size) {
    const int rc = builtin::sdpa_kernel().forward(host, p, q, kk, v, masks, out, weights, saved, work, err, err_size);
    if (p->dtype == KILN_FLOAT64) static_cast<double*>(out->data)[0] *= 1.01;
    else static_cast<float*>(out->data)[0] *= 1.01f;
    return rc;
  };
  return k;
}

TEST(FusedAttention, BrokenKernelFailsCheck) {
  const kiln_attention_kernel k = broken();
  const AttentionKernel wrapped{"sdpa_broken", "test", "test", "", "fused_sdpa_broken", k};
  const CheckReport r = check_attention_plugin(wrapped);
  EXPECT_FALSE(r.passed());
  EXPECT_TRUE(contains(r.to_string(), "output             float64")) << r.to_string();
  EXPECT_TRUE(contains(r.to_string(), "FAIL"));
}

struct MhaCase {
  std::string name;
  nn::MultiheadAttentionOptions options;
  bool self, kv_same, unbatched;
  std::function<nn::AttentionForwardOptions(std::int64_t batch)> call;
};
void PrintTo(const MhaCase& c, std::ostream* os) { *os << c.name; }

class FusedMha : public ::testing::TestWithParam<MhaCase> {};

// Outputs and the gradients of query, key, value and every parameter: fused against generic, float64.
TEST_P(FusedMha, EqualsGenericGraph) {
  const MhaCase& c = GetParam();
  std::vector<std::vector<Tensor>> results;
  for (nn::Impl impl : {nn::Impl::Generic, nn::Impl::Fused}) {
    manual_seed(5);
    nn::MultiheadAttention mha(nn::MultiheadAttentionOptions(c.options).impl(impl));
    mha.to(kFloat64);
    Generator g(9);
    for (auto& [name, p] : mha.named_parameters()) p.set_value(uniform(p.shape(), -0.5, 0.5, kFloat64, &g));
    const auto& o = mha.options();
    const std::int64_t b = 3, lq = 4, lk = 6;
    auto shape = [&](std::int64_t len, std::int64_t f) {
      return c.unbatched ? Shape{len, f} : o.batch_first_ ? Shape{b, len, f} : Shape{len, b, f};
    };
    Variable q(uniform(shape(c.self ? lk : lq, o.embed_dim_), -1, 1, kFloat64, &g), true);
    Variable k = c.self ? q : Variable(uniform(shape(lk, o.kdim_), -1, 1, kFloat64, &g), true);
    Variable v = c.self || c.kv_same ? k : Variable(uniform(shape(lk, o.vdim_), -1, 1, kFloat64, &g), true);
    const auto opts = c.call(c.unbatched ? 1 : b).need_weights(false);
    const Variable out = mha.forward(q, k, v, opts).output;
    std::string why;
    EXPECT_EQ(mha.last_call_fused(&why), impl == nn::Impl::Fused) << why;
    sum(out * Variable(uniform(out.shape(), -1, 1, kFloat64, &g))).backward();
    std::vector<Tensor> r{out.value(), q.grad()};
    if (!c.self) r.push_back(k.grad());
    if (!c.self && !c.kv_same) r.push_back(v.grad());
    for (auto& [name, p] : mha.named_parameters()) r.push_back(p.grad());
    results.push_back(r);
  }
  ASSERT_EQ(results[0].size(), results[1].size());
  for (std::size_t i = 0; i < results[0].size(); ++i)
    EXPECT_LT(max_abs_diff(results[0][i], results[1][i]), 1e-12) << "tensor " << i;
}

nn::AttentionForwardOptions no_masks(std::int64_t) { return nn::AttentionForwardOptions(); }

INSTANTIATE_TEST_SUITE_P(
    Layouts, FusedMha,
    ::testing::Values(
        MhaCase{"self_seq_first", nn::MultiheadAttentionOptions(8, 2), true, false, false, no_masks},
        MhaCase{"self_batch_first_causal", nn::MultiheadAttentionOptions(8, 2).batch_first(true), true, false, false,
                [](std::int64_t) { return nn::AttentionForwardOptions().is_causal(true); }},
        MhaCase{"self_unbatched", nn::MultiheadAttentionOptions(6, 3), true, false, true, no_masks},
        MhaCase{"cross_kv_same_padding", nn::MultiheadAttentionOptions(8, 4).batch_first(true), false, true, false,
                [](std::int64_t b) {
                  std::vector<bool> pad(static_cast<std::size_t>(b * 6));
                  for (std::int64_t i = 0; i < b; ++i) pad[static_cast<std::size_t>(i * 6 + 5 - i)] = true;
                  return nn::AttentionForwardOptions().key_padding_mask(Variable(from_data(pad, {b, 6})));
                }},
        MhaCase{"separate_kdim_vdim_bool_mask", nn::MultiheadAttentionOptions(8, 2).kdim(3).vdim(5), false, false, false,
                [](std::int64_t) {
                  std::vector<bool> m(24);
                  for (std::size_t i = 0; i < m.size(); ++i) m[i] = i % 5 == 2;
                  return nn::AttentionForwardOptions().attn_mask(Variable(from_data(m, {4, 6})));
                }},
        MhaCase{"cross_float_mask_per_head_no_bias", nn::MultiheadAttentionOptions(8, 2).bias(false), false, false, false,
                [](std::int64_t b) {
                  Generator g(3);
                  return nn::AttentionForwardOptions().attn_mask(Variable(uniform({b * 2, 4, 6}, -1, 1, kFloat64, &g)));
                }}),
    [](const auto& info) { return info.param.name; });

TEST(FusedMha, KVCacheOnTheFusedPath) {
  nn::MultiheadAttention mha(nn::MultiheadAttentionOptions(8, 2).batch_first(true));
  mha.to(kFloat64);
  Generator g(12);
  const Variable x(normal({2, 5, 8}, 0, 1, kFloat64, &g));
  const auto opts = nn::AttentionForwardOptions().is_causal(true).need_weights(false);
  const Variable full = mha.forward(x, x, x, opts).output;
  EXPECT_TRUE(mha.last_call_fused());
  nn::KVCache cache;
  std::vector<Variable> steps;
  for (std::int64_t t = 0; t < 5; ++t) {
    const Variable xt = narrow(x, 1, t, 1);
    steps.push_back(mha.forward(xt, xt, xt, nn::AttentionForwardOptions(opts).cache(&cache)).output);
    EXPECT_TRUE(mha.last_call_fused());
  }
  EXPECT_LT(max_abs_diff(concat(steps, 1).value(), full.value()), 1e-13);
}

TEST(FusedMha, WeightsWithGradientsUseTheGenericGraph) {
  nn::MultiheadAttention mha(nn::MultiheadAttentionOptions(8, 2));
  const Variable x(zeros({3, 2, 8}));
  mha.forward(x, x, x);  // need_weights defaults to true, as in PyTorch
  std::string why;
  EXPECT_FALSE(mha.last_call_fused(&why));
  EXPECT_TRUE(contains(why, "need_weights(false)")) << why;
  {
    NoGradGuard no_grad;  // inference: the fused kernel returns the weights too
    const auto r = mha.forward(x, x, x);
    EXPECT_TRUE(mha.last_call_fused());
    EXPECT_EQ(r.weights.shape(), (Shape{2, 3, 3}));
  }
  mha.set_impl(nn::Impl::Fused);
  try {
    mha.forward(x, x, x);
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "MultiheadAttention: impl Fused, but the attention weights are asked for")) << e.what();
  }
}

// Dropout inside the kernel: the same seed gives the same output, its gradient is right (finite
// differences through the fixed mask), and about p of the weights are dropped.
TEST(FusedAttention, DropoutIsDeterministicAndDifferentiable) {
  const AttentionKernel& k = *Registry::global().attention("sdpa");
  Generator g(21);
  const Variable qkv(uniform({5, 2, 3 * 4}, -1, 1, kFloat64, &g), true);
  FusedAttentionOptions o;
  o.scale = 0.5, o.dropout_p = 0.3, o.seed = 77;
  auto run = [&](const Variable& base, std::uint64_t seed) {
    FusedAttentionOptions oo = o;
    oo.seed = seed;
    return run_fused_attention(k, AttentionView::heads_of(base, false, 0, 2, 2), AttentionView::heads_of(base, false, 4, 2, 2),
                               AttentionView::heads_of(base, false, 8, 2, 2), oo, false)
        .out;
  };
  EXPECT_TRUE(equal(run(qkv, 77).value(), run(qkv, 77).value()));
  EXPECT_FALSE(equal(run(qkv, 77).value(), run(qkv, 78).value()));
  const GradcheckResult r = gradcheck([&](const std::vector<Variable>& in) { return run(in[0], 77); }, {qkv});
  EXPECT_TRUE(r.ok) << r.message;
  // Values all ones: each output element is the kept fraction of its row times 1/(1-p).
  const Variable ones_v(ones({64, 1, 3 * 64}, kFloat64));
  const auto big = run_fused_attention(k, AttentionView::heads_of(ones_v, false, 0, 1, 64), AttentionView::heads_of(ones_v, false, 64, 1, 64),
                                       AttentionView::heads_of(ones_v, false, 128, 1, 64), o, false);
  const double mean_out = math::sum_all(big.out.value()) / static_cast<double>(big.out.numel());
  EXPECT_NEAR(mean_out, 1.0, 0.02);
}

TEST(FusedAttention, RegistryTakesVersionOnePluginsAndRefusesMalformedAttentionKernels) {
  Registry r;
  kiln_recurrent_kernel lstm = builtin::lstm_kernel();
  const kiln_plugin v1{1, "old", "1", 1, &lstm, 0, nullptr};  // ends before the attention fields
  r.add(v1, "old.so");
  EXPECT_NE(r.get("lstm"), nullptr);
  EXPECT_TRUE(r.attention_kernels().empty());
  kiln_attention_kernel bad = builtin::sdpa_kernel();
  bad.backward = nullptr;
  const kiln_plugin v2{KILN_PLUGIN_ABI_VERSION, "new", "1", 0, nullptr, 1, &bad};
  try {
    r.add(v2, "new.so");
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "plugin 'new' (new.so): attention kernel 'sdpa' lacks one of")) << e.what();
  }
  const kiln_attention_kernel good = builtin::sdpa_kernel();
  const kiln_plugin v2_good{KILN_PLUGIN_ABI_VERSION, "new", "1", 0, nullptr, 1, &good};
  r.add(v2_good, "new.so");
  EXPECT_NE(r.attention("sdpa"), nullptr);
  EXPECT_THROW(r.add(v2_good, "again.so"), Error);  // the name is taken
}

}  // namespace
}  // namespace kiln::plugins

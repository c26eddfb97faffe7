// Note [Kernel claims]: a kernel runs for a cell only when the cell's math is known to equal it.

#include <gtest/gtest.h>

#include "autograd/grad_mode.hpp"
#include "layers/cell_registry.hpp"
#include "sequence/recurrent.hpp"
#include "sequence/research_layers.hpp"
#include "ops/ops.hpp"
#include "fusion/kernel_choice.hpp"
#include "plugins/registry.hpp"
#include "tensor/random.hpp"

namespace kiln::plugins {
namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Compiled kernels off for the rest of a scope: the claims and the graph pass alone (Note [Kernel claims] 1-3).
struct NoCompiledKernels {
  NoCompiledKernels() { plugins::set_compiled_kernels(false); }
  ~NoCompiledKernels() { plugins::set_compiled_kernels(true); }
};

TEST(KernelChoice, TrustsTheClassThatClaimsAndSaysWhyNot) {
  auto kernel_of = [](nn::RecurrentCell&& cell, std::string* why = nullptr) {
    const KernelChoice c = choose_kernel(cell);
    if (why) *why = c.why_not;
    return c.kernel ? c.kernel->name : std::string();
  };
  EXPECT_EQ(kernel_of(nn::LSTMCell(nn::LSTMCellOptions(3, 4))), "lstm");
  EXPECT_EQ(kernel_of(nn::LSTMCell(nn::LSTMCellOptions(3, 4).bias(false))), "lstm");
  EXPECT_EQ(kernel_of(nn::GRUCell(nn::GRUCellOptions(3, 4))), "gru");
  EXPECT_EQ(kernel_of(nn::GRUCell(nn::GRUCellOptions(3, 4).reset_after(false))), "gru_reset_before");
  EXPECT_EQ(kernel_of(nn::RNNCell(nn::RNNCellOptions(3, 4))), "rnn_tanh");
  EXPECT_EQ(kernel_of(nn::RNNCell(nn::RNNCellOptions(3, 4).nonlinearity(nn::Nonlinearity::ReLU))), "rnn_relu");
  EXPECT_EQ(kernel_of(nn::LayerNormLSTMCell(3, 4)), "layer_norm_lstm");
  EXPECT_EQ(choose_kernel(*std::make_shared<nn::LSTMCell>(nn::LSTMCellOptions(3, 4))).how,
            "LSTMCell claims kernel 'lstm' from plugin 'builtin'");

  std::string why;
  EXPECT_EQ(kernel_of(nn::LSTMCell(nn::LSTMCellOptions(3, 4).single_bias(true)), &why), "");
  EXPECT_TRUE(contains(why, "kernel 'lstm' takes parameters weight_ih, weight_hh, bias_ih, bias_hh but LSTMCell has 'bias'")) << why;
  EXPECT_EQ(kernel_of(nn::LayerNormLSTMCell(3, 4, /*eps=*/1e-3), &why), "");  // the kernel's eps is 1e-5: no claim
  EXPECT_TRUE(contains(why, "matches no registered kernel")) << why;
}

TEST(KernelChoice, AnEmptyRegistryHasNoKernelForAClaim) {
  Registry r;
  nn::LSTMCell cell(nn::LSTMCellOptions(2, 2));
  const KernelChoice c = choose_kernel(cell, r);
  EXPECT_EQ(c.kernel, nullptr);
  EXPECT_TRUE(contains(c.why_not, "LSTMCell claims kernel 'lstm', which no plugin provides")) << c.why_not;
}

// A subclass that only adds a constructor keeps the built-in's math: its inherited claim is confirmed.
class NamedLSTMCell : public nn::LSTMCell {
 public:
  NamedLSTMCell(std::int64_t in, std::int64_t hidden) : LSTMCell(nn::LSTMCellOptions(in, hidden)) {}
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
};

TEST(KernelChoice, ASubclassThatKeepsTheMathIsConfirmedAndRunsFused) {
  NamedLSTMCell cell(3, 4);
  const Tensor before = cell.parameter("weight_hh").value().clone();
  const KernelChoice c = choose_kernel(cell);
  ASSERT_NE(c.kernel, nullptr) << c.why_not;
  EXPECT_EQ(c.kernel->name, "lstm");
  EXPECT_TRUE(contains(c.how, "inherits the claim to kernel 'lstm' and was confirmed")) << c.how;
  // Confirming left the cell as it was.
  EXPECT_EQ(cell.parameter("weight_hh").value().to_vector(), before.to_vector());
  EXPECT_FALSE(cell.parameter("weight_hh").grad().defined());
}

// A layer is often first run for evaluation: the confirmation differentiates inside the caller's
// NoGradGuard all the same (it once failed there, and the claim was refused).
TEST(KernelChoice, ASubclassIsConfirmedInsideANoGradGuard) {
  NamedLSTMCell cell(3, 4);
  NoGradGuard no_grad;
  const KernelChoice c = choose_kernel(cell);
  ASSERT_NE(c.kernel, nullptr) << c.why_not;
  EXPECT_FALSE(grad_enabled());
}

// Subclasses of each built-in cell that change one gate, as a researcher's variant would.
class ForgetBiasLSTMCell : public nn::LSTMCell {  // f = sigmoid(. + 1)
 public:
  using LSTMCell::LSTMCell;
  nn::State step(const Variable& x, const nn::State& s) override {
    const auto g = chunk(linear(x, weight_ih_, bias_ih_) + linear(s[0], weight_hh_, bias_hh_), 4, 1);
    const Variable c = sigmoid(g[1] + 1.0) * s[1] + sigmoid(g[0]) * tanh(g[2]);
    return {sigmoid(g[3]) * tanh(c), c};
  }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
};

class HardResetGRUCell : public nn::GRUCell {  // r = relu(.) instead of sigmoid(.), either GRU form
 public:
  using GRUCell::GRUCell;
  nn::State step(const Variable& x, const nn::State& s) override {
    const std::int64_t H = hidden_size();
    const auto gi = chunk(linear(x, weight_ih_, bias_ih_), 3, 1);
    const auto gh = chunk(linear(s[0], weight_hh_, bias_hh_), 3, 1);
    const Variable r = relu(gi[0] + gh[0]), z = sigmoid(gi[1] + gh[1]);
    const Variable n = reset_after_ ? tanh(gi[2] + r * gh[2])
                                    : tanh(gi[2] + linear(r * s[0], narrow(weight_hh_, 0, 2 * H, H), bias_hh_.defined() ? narrow(bias_hh_, 0, 2 * H, H) : Variable()));
    return {(1.0 - z) * n + z * s[0]};
  }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  bool reset_after_ = true;
};

// Any other built-in: its own step, then one gate-like change on the new state.
template <class Base>
class Damped : public Base {
 public:
  using Base::Base;
  nn::State step(const Variable& x, const nn::State& s) override {
    nn::State next = Base::step(x, s);
    next[0] = sigmoid(next[0]) * next[0];
    return next;
  }
  std::shared_ptr<nn::Module> clone() const override { return nn::Module::clone_as(*this); }
};

struct Variant {
  std::string name;
  nn::CellFactory variant, base;
};

std::vector<Variant> variants() {
  using namespace nn;
  auto lstm = [](std::int64_t i, std::int64_t h, const RecurrentOptions&) { return std::make_shared<LSTMCell>(LSTMCellOptions(i, h)); };
  auto gru = [](bool after) {
    return [after](std::int64_t i, std::int64_t h, const RecurrentOptions&) {
      return std::make_shared<GRUCell>(GRUCellOptions(i, h).reset_after(after));
    };
  };
  auto hard_gru = [](bool after) {
    return [after](std::int64_t i, std::int64_t h, const RecurrentOptions&) {
      auto c = std::make_shared<HardResetGRUCell>(GRUCellOptions(i, h).reset_after(after));
      c->reset_after_ = after;
      return c;
    };
  };
  auto rnn = [](Nonlinearity n) {
    return [n](std::int64_t i, std::int64_t h, const RecurrentOptions&) { return std::make_shared<RNNCell>(RNNCellOptions(i, h).nonlinearity(n)); };
  };
  auto damped_rnn = [](Nonlinearity n) {
    return [n](std::int64_t i, std::int64_t h, const RecurrentOptions&) {
      return std::make_shared<Damped<RNNCell>>(RNNCellOptions(i, h).nonlinearity(n));
    };
  };
  return {
      {"lstm", [](std::int64_t i, std::int64_t h, const RecurrentOptions&) { return std::make_shared<ForgetBiasLSTMCell>(LSTMCellOptions(i, h)); }, lstm},
      {"gru", hard_gru(true), gru(true)},
      {"gru_reset_before", hard_gru(false), gru(false)},
      {"rnn_tanh", damped_rnn(Nonlinearity::Tanh), rnn(Nonlinearity::Tanh)},
      {"rnn_relu", damped_rnn(Nonlinearity::ReLU), rnn(Nonlinearity::ReLU)},
      {"layer_norm_lstm", [](std::int64_t i, std::int64_t h, const RecurrentOptions&) { return std::make_shared<Damped<LayerNormLSTMCell>>(i, h); },
       [](std::int64_t i, std::int64_t h, const RecurrentOptions&) { return std::make_shared<LayerNormLSTMCell>(i, h); }},
      {"peephole_lstm", [](std::int64_t i, std::int64_t h, const RecurrentOptions&) { return std::make_shared<Damped<PeepholeLSTMCell>>(i, h); },
       [](std::int64_t i, std::int64_t h, const RecurrentOptions&) { return std::make_shared<PeepholeLSTMCell>(i, h); }},
      {"mgu", [](std::int64_t i, std::int64_t h, const RecurrentOptions&) { return std::make_shared<Damped<MGUCell>>(i, h); },
       [](std::int64_t i, std::int64_t h, const RecurrentOptions&) { return std::make_shared<MGUCell>(i, h); }},
  };
}

// The output and every gradient of a layer on `x` with lengths.
std::vector<double> run(nn::Recurrent& layer, const Variable& x) {
  layer.zero_grad();
  const Variable lengths(from_data(std::vector<std::int64_t>{5, 2, 0}, {3}));
  const auto r = layer.forward(x, {}, lengths);
  sum(r.output * r.output).backward();
  std::vector<double> v = r.output.value().to_vector();
  for (const auto& [name, p] : layer.named_parameters())
    for (double d : p.grad().to_vector()) v.push_back(d);
  return v;
}

double max_difference(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = a.size() == b.size() ? 0 : INFINITY;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

TEST(KernelChoice, ASubclassThatChangesAGateRunsItsOwnMathOnEveryPath) {
  NoCompiledKernels off;    // the claims alone here; compiled below
  load_plugin(MGU_PLUGIN);  // so the MGU's claim names a kernel too
  for (const Variant& v : variants()) {
    SCOPED_TRACE(v.name);
    manual_seed(3);
    const auto options = nn::RecurrentOptions(3, 4).num_layers(2).bidirectional(true);
    nn::Recurrent variant("Variant", options, v.variant);
    nn::Recurrent base("Base", nn::RecurrentOptions(options).impl(nn::Impl::Generic), v.base);
    base.load_state_dict(variant.state_dict());
    const Variable x(randn({5, 3, 3}));
    // Auto: the inherited claim is refused (or had no kernel), and the layer runs the variant's own step.
    std::string why;
    EXPECT_FALSE(variant.uses_fused(&why)) << v.name;
    EXPECT_TRUE(contains(why, "does not compute the same step") || contains(why, "which no plugin provides")) << why;
    const std::vector<double> automatic = run(variant, x);
    variant.set_impl(nn::Impl::Generic);
    const std::vector<double> generic = run(variant, x);
    EXPECT_EQ(max_difference(automatic, generic), 0.0);
    // ... which is not the built-in's math.
    EXPECT_GT(max_difference(generic, run(base, x)), 1e-3);
    // Fused: an error that says why.
    variant.set_impl(nn::Impl::Fused);
    try {
      run(variant, x);
      ADD_FAILURE() << "impl fused ran a kernel for a cell it does not equal";
    } catch (const Error& e) {
      EXPECT_TRUE(contains(e.what(), "impl is fused but")) << e.what();
    }
  }
}

TEST(KernelChoice, AClaimIsChosenAgainWhenAPluginIsLoaded) {
  Registry r;
  nn::MGUCell cell(3, 4);
  EXPECT_EQ(choose_kernel(cell, r).kernel, nullptr);
  const auto generation = r.generation();
  load_plugin(MGU_PLUGIN, r);
  EXPECT_GT(r.generation(), generation);
  const KernelChoice c = choose_kernel(cell, r);
  ASSERT_NE(c.kernel, nullptr) << c.why_not;
  EXPECT_EQ(c.kernel->name, "mgu");
}

// A kernel that fails when run (an error from its plugin) is not confirmed for a cell that inherits a claim
// to it: the layer runs the generic graph and says why, instead of failing.
class ClaimsAFailingKernel : public nn::RNNCell {
 public:
  ClaimsAFailingKernel(std::int64_t in, std::int64_t hidden) : RNNCell(nn::RNNCellOptions(in, hidden).bias(false)) {}
  nn::KernelClaim kernel_claim() const override { return claim<nn::RNNCell>("bad_kernel"); }  // the base's, inherited
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
};

TEST(KernelChoice, AKernelThatFailsIsNotConfirmed) {
  Registry r;
  load_plugin(BAD_FAILS_PLUGIN, r);  // "bad_kernel": its forward always fails
  ClaimsAFailingKernel cell(3, 4);
  KernelChoice c;
  ASSERT_NO_THROW(c = choose_kernel(cell, r));
  EXPECT_EQ(c.kernel, nullptr);
  EXPECT_TRUE(c.claim_refused);
  EXPECT_TRUE(contains(c.why_not, "does not compute the same step: it failed: ")) << c.why_not;
  EXPECT_TRUE(contains(c.why_not, "deliberate failure")) << c.why_not;
}

}  // namespace
}  // namespace kiln::plugins

namespace kiln::plugins {
namespace {

// Note [Kernel claims] 4: a subclass whose inherited claim is refused runs its own step compiled, with
// the generic graph's results (outputs and gradients), or the generic graph when its step does not compile.
TEST(KernelChoice, ARefusedSubclassRunsItsOwnStepCompiled) {
  load_plugin(MGU_PLUGIN);
  for (const Variant& v : variants()) {
    SCOPED_TRACE(v.name);
    manual_seed(3);
    const auto options = nn::RecurrentOptions(3, 4).num_layers(2).bidirectional(true);
    nn::Recurrent variant("Variant", options, v.variant);
    const Variable x(randn({5, 3, 3}));
    std::string why;
    const bool fused = variant.uses_fused(&why);
    // Compiled and proven; or not compiled, or compiled but refused by its proof (float32 rounding of a
    // variant can land past check_plugin's tolerance under other compiler flags): then the generic graph.
    if (fused) EXPECT_TRUE(contains(variant.kernel_report(), "compiled from its step and proven")) << variant.kernel_report();
    else EXPECT_TRUE(contains(why, "does not compile") || contains(why, "the compiled kernel does not match its generic graph")) << why;
    const std::vector<double> automatic = run(variant, x);
    variant.set_impl(nn::Impl::Generic);
    EXPECT_LT(max_difference(automatic, run(variant, x)), 1e-4);
  }
}

}  // namespace
}  // namespace kiln::plugins

// Note [Spot checks]: under Impl::Auto a kernel runs far beyond the sizes check-plugin proves only after a
// spot check against the generic graph at that size class.

#include <gtest/gtest.h>

#include <algorithm>

#include "autograd/grad_mode.hpp"
#include "autograd/tape.hpp"
#include "fusion/spot_check.hpp"
#include "ops/ops.hpp"
#include "plugins/registry.hpp"
#include "sequence/recurrent.hpp"

namespace kiln::nn {
namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

const kiln_recurrent_kernel& real_lstm() {
  static const kiln_recurrent_kernel k = plugins::Registry::global().get("lstm")->abi;
  return k;
}

// Kiln's LSTM kernel, but wrong for batches over 256: 4 times the largest check-plugin runs.
int wrong_for_big_batches(const kiln_host* host, const kiln_recurrent_problem* p, const kiln_tensor* x, const kiln_tensor* states,
                          const kiln_tensor* params, kiln_tensor* y, kiln_tensor* finals, void* saved, void* work, char* err,
                          size_t size) {
  const int rc = real_lstm().forward(host, p, x, states, params, y, finals, saved, work, err, size);
  if (p->batch > 256) {
    if (p->dtype == KILN_FLOAT32) *static_cast<float*>(y->data) += 0.5f;
    else *static_cast<double*>(y->data) += 0.5;
  }
  return rc;
}

class BigBatchBugCell : public LSTMCell {
 public:
  BigBatchBugCell(std::int64_t in, std::int64_t hidden) : LSTMCell(LSTMCellOptions(in, hidden)) {}
  KernelClaim kernel_claim() const override { return claim<BigBatchBugCell>("big_batch_bug_lstm"); }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
};

void register_big_batch_bug() {
  static const bool registered = [] {
    static kiln_recurrent_kernel k = real_lstm();
    k.name = "big_batch_bug_lstm";
    k.forward = &wrong_for_big_batches;
    static const std::uint32_t flags[] = {plugins::Registry::global().get("lstm")->flags};
    static const kiln_plugin plugin{KILN_PLUGIN_ABI_VERSION, "big_batch_bug", "0", 1, &k, 0, nullptr, flags};
    plugins::Registry::global().add(plugin, "test");
    return true;
  }();
  ASSERT_TRUE(registered);
}

// The ops a forward and backward recorded, and what Kiln printed meanwhile.
struct Ran {
  std::vector<std::string> ops;
  std::string printed;
  Tensor output;
};

Ran run(Recurrent& layer, std::int64_t steps, std::int64_t batch, bool no_grad = false) {
  Tape::current().clear();
  manual_seed(3);
  const Variable x(uniform({steps, batch, layer.options().input_size_}, -1, 1));
  testing::internal::CaptureStderr();
  Ran r;
  {
    std::unique_ptr<NoGradGuard> guard(no_grad ? new NoGradGuard : nullptr);
    r.output = layer.forward(x, {}).output.value();
  }
  r.printed = testing::internal::GetCapturedStderr();
  for (const auto& rec : Tape::current().records())
    if (rec.live()) r.ops.emplace_back(rec.op);  // not the spot check's own, already differentiated
  Tape::current().clear();
  return r;
}

bool has(const Ran& r, const std::string& op) { return std::find(r.ops.begin(), r.ops.end(), op) != r.ops.end(); }

TEST(SpotCheck, FarOutsideMeansMoreThanFourTimesTheLargestCheckedSize) {
  using plugins::far_outside_checked_sizes;
  EXPECT_FALSE(far_outside_checked_sizes(50, 64, 128, 1024));
  EXPECT_FALSE(far_outside_checked_sizes(200, 256, 512, 4096));
  EXPECT_TRUE(far_outside_checked_sizes(201, 1, 1, 1));
  EXPECT_TRUE(far_outside_checked_sizes(1, 257, 1, 1));
  EXPECT_TRUE(far_outside_checked_sizes(1, 1, 513, 1));
  EXPECT_TRUE(far_outside_checked_sizes(1, 1, 1, 4097));
}

TEST(SpotCheck, AKernelWrongOnlyFarBeyondTheCheckedSizesIsNotUsedThere) {
  register_big_batch_bug();
  Recurrent layer("BigBatchLSTM", RecurrentOptions(3, 4), [](std::int64_t in, std::int64_t h, const RecurrentOptions&) {
    return std::make_shared<BigBatchBugCell>(in, h);
  });
  // Within the checked sizes the kernel runs, unchecked.
  const Ran small = run(layer, 2, 8);
  EXPECT_TRUE(has(small, "fused_big_batch_bug_lstm"));
  EXPECT_FALSE(contains(small.printed, "spot")) << small.printed;
  // Far beyond them (batch 300) its spot check fails: the layer warns and runs the generic graph.
  const Ran big = run(layer, 2, 300);
  EXPECT_FALSE(has(big, "fused_big_batch_bug_lstm"));
  EXPECT_TRUE(contains(big.printed, "BigBatchLSTM: kernel 'big_batch_bug_lstm' failed its spot check against the generic graph "
                                    "at T=2 B=300 I=3 H=4, far beyond the sizes check-plugin proves it at (T 50, B 64, I 128, H "
                                    "1024): output (float32) differs by"))
      << big.printed;
  layer.set_impl(Impl::Generic);
  const Ran generic = run(layer, 2, 300);
  EXPECT_TRUE(equal(big.output, generic.output));
  // The verdict holds for the size class (257 to 512): no second check, no second warning.
  layer.set_impl(Impl::Auto);
  const Ran again = run(layer, 2, 400);
  EXPECT_FALSE(has(again, "fused_big_batch_bug_lstm"));
  EXPECT_EQ(again.printed, "");
  // Impl::Fused is the caller's choice: no spot check.
  layer.set_impl(Impl::Fused);
  EXPECT_TRUE(has(run(layer, 2, 300), "fused_big_batch_bug_lstm"));
}

TEST(SpotCheck, ACorrectKernelIsCheckedOnceForASizeClassEvenWithoutGrad) {
  LSTM lstm(RecurrentOptions(3, 4).bidirectional(true));
  const auto before = lstm.state_dict();
  // Inside the caller's NoGradGuard: the check differentiates anyway, and leaves the parameters as they were.
  const Ran first = run(lstm, 2, 600, /*no_grad=*/true);
  EXPECT_TRUE(contains(first.printed, "LSTM: kernel 'lstm' spot-checked against the generic graph at T=2 B=600 I=3 H=4")) << first.printed;
  EXPECT_TRUE(contains(first.printed, ": agrees (worst relative error")) << first.printed;
  const Ran trained = run(lstm, 2, 700);
  EXPECT_TRUE(has(trained, "fused_lstm"));
  EXPECT_EQ(trained.printed, "");  // 513 to 1024: checked already
  for (const auto& [name, value] : lstm.state_dict()) EXPECT_TRUE(equal(value, before.at(name))) << name;
  for (const auto& [name, p] : lstm.named_parameters()) EXPECT_FALSE(p.grad().defined()) << name;
}

TEST(SpotCheck, TurnedOffTheNoteSaysTheKernelRunsUnchecked) {
  plugins::set_spot_checks(false);
  LSTM lstm(RecurrentOptions(3, 4));
  const Ran r = run(lstm, 2, 1500);
  plugins::set_spot_checks(true);
  EXPECT_TRUE(has(r, "fused_lstm"));
  EXPECT_TRUE(contains(r.printed, "LSTM: kernel 'lstm' runs T=2 B=1500 I=3 H=4 far beyond the sizes check-plugin proves it at "
                                  "(T 50, B 64, I 128, H 1024) without a spot check (spot checks are off)"))
      << r.printed;
}

}  // namespace
}  // namespace kiln::nn

// Layers on fused kernels against the same layers on the generic graph: every option the layer has.

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include "fusion/kernel_choice.hpp"

#include <algorithm>
#include <cmath>
#include <functional>

#include "autograd/tape.hpp"
#include "kiln/recurrent_kernel.hpp"
#include "sequence/recurrent.hpp"
#include "sequence/research_layers.hpp"
#include "ops/ops.hpp"
#include "plugins/registry.hpp"
#include "tensor/parallel.hpp"
#include "tensor/storage.hpp"

namespace kiln::nn {
namespace {

struct Result {
  std::vector<double> values;  // output, h_n, c_n, then every gradient, flattened
};

// initial: the initial state tensors (their gradients are compared too), or none for zeros.
Result run(Recurrent& layer, Impl impl, const Tensor& x, const Tensor& lengths, bool train, std::uint64_t seed,
           const std::vector<Tensor>& initial = {}) {
  layer.set_impl(impl);
  layer.zero_grad();
  layer.train(train);
  manual_seed(seed);
  Variable xv(x.clone(), true);
  std::vector<Variable> state;
  for (const Tensor& s : initial) state.emplace_back(s.clone(), true);
  const RecurrentOutput r = layer.forward(xv, state, lengths.defined() ? Variable(lengths) : Variable());
  Variable loss = sum(r.output * r.output) + sum(r.h_n * 0.5);
  if (r.c_n.defined()) loss = loss + sum(r.c_n * r.c_n);
  loss.backward();
  Result out;
  for (const Tensor& t : {r.output.value(), r.h_n.value(), xv.grad()})
    for (double v : t.to_vector()) out.values.push_back(v);
  if (r.c_n.defined())
    for (double v : r.c_n.value().to_vector()) out.values.push_back(v);
  for (const auto& [name, p] : layer.named_parameters())
    for (double v : p.grad().to_vector()) out.values.push_back(v);
  for (const Variable& s : state)
    for (double v : s.grad().to_vector()) out.values.push_back(v);
  return out;
}

void expect_same(const Result& a, const Result& b, double tol, const std::string& what) {
  ASSERT_EQ(a.values.size(), b.values.size()) << what;
  double worst = 0;
  for (std::size_t i = 0; i < a.values.size(); ++i) worst = std::max(worst, std::isnan(a.values[i] - b.values[i]) ? INFINITY : std::abs(a.values[i] - b.values[i]));
  EXPECT_LE(worst, tol) << what;
}

using Make = std::function<std::shared_ptr<Recurrent>(RecurrentOptions)>;

struct LayerCase {
  const char* name;
  Make make;
};

const LayerCase kLayers[] = {
    {"LSTM", [](RecurrentOptions o) { return std::make_shared<LSTM>(o); }},
    {"GRU", [](RecurrentOptions o) { return std::make_shared<GRU>(o); }},
    {"GRU reset_before", [](RecurrentOptions o) { return std::make_shared<GRU>(o.reset_after(false)); }},
    {"RNN tanh", [](RecurrentOptions o) { return std::make_shared<RNN>(o); }},
    {"RNN relu", [](RecurrentOptions o) { return std::make_shared<RNN>(o.nonlinearity(Nonlinearity::ReLU)); }},
    // Parameters beyond the gate weights (kiln::sdk::Param): weight_peephole [3, H].
    {"PeepholeLSTM", [](RecurrentOptions o) { return std::make_shared<PeepholeLSTM>(o); }},
};

// Two layers, both directions, batch_first, lengths, dropout between layers (the same masks: the same
// seed), float64 and float32, on 1 and 2 threads.
// Compiled kernels off for the rest of a scope: the claims and the graph pass alone (Note [Kernel claims] 1-3).
struct NoCompiledKernels {
  NoCompiledKernels() { kiln::plugins::set_compiled_kernels(false); }
  ~NoCompiledKernels() { kiln::plugins::set_compiled_kernels(true); }
};

TEST(FusedLayers, EqualTheGenericGraphWithEveryOption) {
  for (const auto& lc : kLayers)
    for (DType dtype : {kFloat64, kFloat32})
      for (int threads : {1, 2}) {
        const int before = num_threads();
        set_num_threads(threads);
        manual_seed(11);
        auto layer = lc.make(RecurrentOptions(4, 6).num_layers(2).bidirectional(true).batch_first(true).dropout(0.3));
        layer->to(dtype);
        ASSERT_TRUE(layer->uses_fused()) << lc.name;
        const Tensor x = randn({3, 5, 4}, dtype);
        const Tensor lengths = from_data(std::vector<std::int64_t>{5, 2, 0}, {3});
        const std::string what = fmt::format("{} {} threads {}", lc.name, dtype, threads);
        const double tol = dtype == kFloat64 ? 1e-11 : 2e-4;
        expect_same(run(*layer, Impl::Fused, x, lengths, true, 5), run(*layer, Impl::Generic, x, lengths, true, 5), tol, what + " train");
        expect_same(run(*layer, Impl::Fused, x, Tensor(), false, 5), run(*layer, Impl::Generic, x, Tensor(), false, 5), tol, what + " eval");
        set_num_threads(before);
      }
}

// Large enough that the batch runs as one block of rows per thread for the whole sequence (Note [Rows
// side by side] in kiln/detail/recurrent_schedule.hpp: 65 rows of 256 units, the smallest cell's gates, per
// thread), with uneven blocks (129 rows) and every length from 0 to T, and that the batched GEMMs split
// too.
TEST(FusedLayers, SplitAcrossThreadsEqualTheGenericGraph) {
  const int before = num_threads();
  set_num_threads(2);
  for (const auto& lc : kLayers) {
    manual_seed(3);
    auto layer = lc.make(RecurrentOptions(16, 256).bidirectional(true));
    layer->to(kFloat64);
    const Tensor x = randn({3, 129, 16}, kFloat64);
    std::vector<std::int64_t> len;
    for (std::int64_t b = 0; b < 129; ++b) len.push_back(b % 4);
    const Tensor lengths = from_data(len, {129});
    std::vector<Tensor> initial{randn({2, 129, 256}, kFloat64)};
    if (layer->cell(0)->state_size() == 2) initial.push_back(randn({2, 129, 256}, kFloat64));
    expect_same(run(*layer, Impl::Fused, x, lengths, false, 0, initial), run(*layer, Impl::Generic, x, lengths, false, 0, initial),
                1e-10, lc.name);
  }
  set_num_threads(before);
}

// Long enough for backward's weight gradients to come in several blocks of steps, the last one partial
// (Note [Weight gradients by blocks]): run after each block on one thread, beside the steps on two.
// Both equal the generic graph, and each other bit for bit.
TEST(FusedLayers, WeightGradientsByBlocksEqualTheGenericGraph) {
  const int before = num_threads();
  for (const auto& lc : kLayers)
    for (bool both : {false, true}) {  // one direction: the steps and the blocks on two threads at once
      manual_seed(5);
      auto layer = lc.make(RecurrentOptions(3, 8).bidirectional(both));
      layer->to(kFloat64);
      const Tensor x = randn({150, 4, 3}, kFloat64);  // 256 rows a block: 64 steps, so blocks of 64, 64, 22
      const Tensor lengths = from_data(std::vector<std::int64_t>{150, 149, 90, 1}, {4});
      set_num_threads(1);
      const Result one = run(*layer, Impl::Fused, x, lengths, false, 0);
      expect_same(one, run(*layer, Impl::Generic, x, lengths, false, 0), 1e-10, lc.name);
      set_num_threads(2);
      const Result two = run(*layer, Impl::Fused, x, lengths, false, 0);
      EXPECT_EQ(one.values, two.values) << lc.name;
    }
  set_num_threads(before);
}

// Note [Rows apart]: a narrow batch runs as two groups of rows, each a problem of its own with its
// strided rows of x, y and dx and its own partial weight gradients. Uneven groups (10 and 11 rows),
// several blocks of steps, every kind of length, initial states, one and two directions, the
// retained graph and the last backward: equal to the generic graph, and bit for bit on 1 and 2 threads.
TEST(FusedLayers, NarrowBatchesRunAsTwoGroupsOfRows) {
  kiln_recurrent_problem p{};
  p.batch = 21, p.hidden_size = 6;
  ASSERT_EQ(sdk::detail::row_groups(p, 4), 2);  // this test's shapes are run in groups
  p.batch = 15;
  EXPECT_EQ(sdk::detail::row_groups(p, 4), 1);  // too few rows for two register blocks
  p.batch = 64, p.hidden_size = 256;
  EXPECT_EQ(sdk::detail::row_groups(p, 4), 1);  // wide: rows side by side instead
  p.batch = 32, p.hidden_size = 256, p.input_size = 512;
  EXPECT_EQ(sdk::detail::row_groups(p, 3), 1);  // narrow, but weights of 2.4 MB
  const int before = num_threads();
  for (const auto& lc : kLayers)
    for (int variant = 0; variant < 3; ++variant) {  // one direction; both; one without biases
      const bool both = variant == 1;
      manual_seed(6);
      auto layer = lc.make(RecurrentOptions(5, 6).bidirectional(both).num_layers(2).bias(variant != 2));
      layer->to(kFloat64);
      const Tensor x = randn({40, 21, 5}, kFloat64);  // 256-row blocks of 12 and 13 steps
      std::vector<std::int64_t> len;
      for (std::int64_t b = 0; b < 21; ++b) len.push_back((b * 7) % 41);
      const Tensor lengths = from_data(len, {21});
      const int L = both ? 4 : 2;
      std::vector<Tensor> initial{randn({L, 21, 6}, kFloat64)};
      if (layer->cell(0)->state_size() == 2) initial.push_back(randn({L, 21, 6}, kFloat64));
      set_num_threads(1);
      const Result one = run(*layer, Impl::Fused, x, lengths, false, 0, initial);
      expect_same(one, run(*layer, Impl::Generic, x, lengths, false, 0, initial), 1e-10, lc.name);
      set_num_threads(2);
      EXPECT_EQ(one.values, run(*layer, Impl::Fused, x, lengths, false, 0, initial).values) << lc.name;
    }
  set_num_threads(before);
}

// The last backward reuses the kernel's saved memory (KILN_LAST_BACKWARD); with retain_graph the first
// must leave it intact, so a second backward accumulates the same gradients again.
// Note [Packed output]: a bidirectional layer on a kernel that takes strided sequences has both
// directions write into one [T, B, 2H] output (no concat node, the output a view of the fused node's);
// a kernel without the flag gets contiguous halves, concatenated. Both equal the generic graph.
// An LSTM cell that claims the LSTM kernel registered without strided sequences.
class ContiguousLSTMCell : public LSTMCell {
 public:
  ContiguousLSTMCell(std::int64_t in, std::int64_t hidden) : LSTMCell(LSTMCellOptions(in, hidden)) {}
  KernelClaim kernel_claim() const override { return claim<ContiguousLSTMCell>("lstm_contiguous"); }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
};

TEST(FusedLayers, BidirectionalOutputIsWrittenInPlaceWhenTheKernelTakesStrides) {
  auto ops_of_forward = [](Recurrent& layer, const Tensor& x) {
    Tape::current().clear();
    layer.set_impl(Impl::Fused);
    const Variable y = layer.forward(Variable(x), {}).output;
    std::vector<std::string> ops;
    for (const auto& r : Tape::current().records())
      if (r.live()) ops.emplace_back(r.op);
    return ops;
  };
  auto count = [](const std::vector<std::string>& ops, const std::string& op) { return std::count(ops.begin(), ops.end(), op); };
  manual_seed(5);
  LSTM lstm(RecurrentOptions(3, 4).bidirectional(true));
  const Tensor x = randn({5, 2, 3});
  const auto lstm_ops = ops_of_forward(lstm, x);
  // h_n and c_n are stacks (a concat each); the output is not.
  EXPECT_EQ(count(lstm_ops, "fused_lstm"), 1);
  EXPECT_EQ(count(lstm_ops, "concat"), 2) << fmt::format("{}", fmt::join(lstm_ops, " "));
  // The same kernel registered without KILN_KERNEL_STRIDED_SEQUENCES, as an older plugin would be.
  static const bool registered = [] {
    static kiln_recurrent_kernel k = plugins::Registry::global().get("lstm")->abi;
    k.name = "lstm_contiguous";
    static const std::uint32_t flags[] = {KILN_KERNEL_BACKWARD_READS_Y};
    static const kiln_plugin plugin{KILN_PLUGIN_ABI_VERSION, "contiguous", "0", 1, &k, 0, nullptr, flags};
    plugins::Registry::global().add(plugin, "test");
    return true;
  }();
  ASSERT_TRUE(registered);
  Recurrent ln("ContiguousLSTM", RecurrentOptions(3, 4).bidirectional(true), [](std::int64_t in, std::int64_t h, const RecurrentOptions&) {
    return std::make_shared<ContiguousLSTMCell>(in, h);
  });
  const auto ln_ops = ops_of_forward(ln, x);
  EXPECT_EQ(count(ln_ops, "fused_lstm_contiguous"), 1);
  EXPECT_EQ(count(ln_ops, "concat"), 3) << fmt::format("{}", fmt::join(ln_ops, " "));
  Tape::current().clear();
  const Tensor lengths = from_data(std::vector<std::int64_t>{5, 3}, {2});
  for (Recurrent* layer : {static_cast<Recurrent*>(&lstm), static_cast<Recurrent*>(&ln)}) {
    const Result fused = run(*layer, Impl::Fused, x, lengths, true, 1), generic = run(*layer, Impl::Generic, x, lengths, true, 1);
    expect_same(fused, generic, 1e-5, layer->type_name());
  }
}

// Uneven lengths, both directions. The layer-norm LSTM too: its last backward writes over its saved rows
// (Note [Gradients over saved rows]) and an earlier one must not.
TEST(FusedLayers, BackwardTwiceWithRetainGraph) {
  std::vector<LayerCase> layers(std::begin(kLayers), std::end(kLayers));
  layers.push_back({"LayerNormLSTM", [](RecurrentOptions o) { return std::make_shared<LayerNormLSTM>(o); }});
  for (const auto& lc : layers)
    for (std::int64_t batch : {2, 20}) {  // 20: two groups of rows (Note [Rows apart])
      manual_seed(8);
      auto layer = lc.make(RecurrentOptions(3, 5).bidirectional(true));
      layer->to(kFloat64);
      const Variable x(randn({4, batch, 3}, kFloat64));
      std::vector<std::int64_t> lengths(static_cast<std::size_t>(batch));
      for (std::int64_t b = 0; b < batch; ++b) lengths[static_cast<std::size_t>(b)] = 4 - b % 3;  // 4, 3, 2, 4, ...
      const Variable len(from_data(lengths, {batch}));
      // The first backward's gradients, on the fused kernel and on the generic graph.
      std::vector<std::vector<double>> once[2];
      Variable loss;
      for (Impl impl : {Impl::Generic, Impl::Fused}) {
        layer->set_impl(impl);
        layer->zero_grad();
        loss = sum(layer->forward(x, {}, len).output * layer->forward(x, {}, len).output);
        loss.backward(Tensor(), /*retain_graph=*/true);
        for (const auto& [name, p] : layer->named_parameters()) once[impl == Impl::Fused].push_back(p.grad().to_vector());
      }
      loss.backward();  // the fused graph's second backward
      std::size_t i = 0;
      for (const auto& [name, p] : layer->named_parameters()) {
        const auto twice = p.grad().to_vector();
        for (std::size_t j = 0; j < twice.size(); ++j) {
          ASSERT_NEAR(once[1][i][j], once[0][i][j], 1e-10) << lc.name << " " << name << ": retained backward vs generic";
          ASSERT_NEAR(twice[j], 2 * once[1][i][j], 1e-12) << lc.name << " " << name;
        }
        ++i;
      }
    }
}

// Note [Gradients over saved rows]: the layer-norm LSTM's last backward writes dA and dR over its saved
// rows. A work buffer for them would take 2 x T x B x 4H floats (3.1 MiB here) at the peak of backward.
TEST(FusedLayers, LayerNormLstmLastBackwardNeedsNoGradientBuffer) {
  const std::int64_t T = 50, B = 32, I = 8, H = 64;
  manual_seed(4);
  LayerNormLSTM layer(RecurrentOptions(I, H));
  layer.set_impl(Impl::Fused);
  const Variable x(randn({T, B, I}));
  sum(layer.forward(x, {}).output).backward();  // warms the allocator's cache
  layer.zero_grad();
  const Variable loss = sum(layer.forward(x, {}).output);
  empty_cache();
  reset_peak_memory_stats();
  const std::int64_t before = memory_stats().allocated_bytes;
  loss.backward();
  const std::int64_t grown = memory_stats().peak_allocated_bytes - before;
  const std::int64_t one_gradient_buffer = T * B * 4 * H * 4;  // dA or dR of every step, float32
  EXPECT_LT(grown, one_gradient_buffer) << "backward kept dA or dR of every step in a work buffer";
}

TEST(FusedLayers, AreDeterministicForAGivenThreadCount) {
  for (int threads : {1, 2}) {
    const int before = num_threads();
    set_num_threads(threads);
    manual_seed(2);
    LSTM lstm(LSTMOptions(16, 40).bidirectional(true));
    const Tensor x = randn({7, 33, 16});
    const Result a = run(lstm, Impl::Fused, x, Tensor(), false, 0), b = run(lstm, Impl::Fused, x, Tensor(), false, 0);
    EXPECT_EQ(a.values, b.values) << "threads " << threads;
    set_num_threads(before);
  }
}

// The layer-norm LSTM kernel shares a step's rows, and backward's fixed chunks of rows, between the
// threads only when they are wide enough (4H = 2048: 16 rows per thread); each chunk keeps its own sums,
// and its GEMMs run in blocks that do not depend on the thread count (sdk::gemm_fixed_blocks; with
// Kiln's thread-count split, dW_hh differed in the last bit at H = 64, the output at H = 512). So 1 and
// 2 threads give the same bits.
TEST(FusedLayers, LayerNormLstmIsBitIdenticalOnOneAndTwoThreads) {
  const int before = num_threads();
  for (std::int64_t hidden : {64, 512}) {
    manual_seed(6);
    LayerNormLSTM layer(RecurrentOptions(8, hidden));
    const Tensor x = randn({3, 40, 8});
    set_num_threads(1);
    const Result one = run(layer, Impl::Fused, x, Tensor(), false, 0);
    set_num_threads(2);
    const Result two = run(layer, Impl::Fused, x, Tensor(), false, 0);
    ASSERT_EQ(one.values.size(), two.values.size());
    std::size_t differ = 0, first = 0;
    for (std::size_t i = 0; i < one.values.size(); ++i)
      if (one.values[i] != two.values[i] && differ++ == 0) first = i;
    EXPECT_EQ(differ, 0u) << "H " << hidden << ": first at " << first << " of " << one.values.size() << ": "
                          << one.values[first] << " vs " << two.values[first];
  }
  set_num_threads(before);
}

// A cell with no kernel runs compiled from its step, or (compiled kernels off) the generic graph under
// Auto, and Fused says why it can't.
TEST(FusedLayers, FallBackToTheGenericGraphAndSayWhy) {
  // eps 1e-3: the layer-norm LSTM kernel computes with 1e-5, so the cell claims no kernel, and the graph
  // pass finds none with its structure and numbers; its step compiles (eps and all).
  auto make = [](std::int64_t in, std::int64_t h, const RecurrentOptions&) { return std::make_shared<LayerNormLSTMCell>(in, h, 1e-3); };
  {
    Recurrent compiled("LayerNormLSTM", RecurrentOptions(3, 4), make);
    std::string why;
    EXPECT_TRUE(compiled.uses_fused(&why)) << why;
    compiled.forward(Variable(randn({2, 1, 3})), {});
    EXPECT_NE(compiled.kernel_report().find("LayerNormLSTMCell compiled from its step and proven"), std::string::npos)
        << compiled.kernel_report();
  }
  NoCompiledKernels off;
  Recurrent ln("LayerNormLSTM", RecurrentOptions(3, 4), make);
  std::string why;
  EXPECT_FALSE(ln.uses_fused(&why));
  EXPECT_NE(why.find("graph pass: LayerNormLSTMCell's step"), std::string::npos) << why;
  EXPECT_NE(why.find("matches no registered kernel"), std::string::npos) << why;
  EXPECT_NO_THROW(ln.forward(Variable(randn({2, 1, 3})), {}));
  ln.set_impl(Impl::Fused);
  try {
    ln.forward(Variable(randn({2, 1, 3})), {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("LayerNormLSTM: impl is fused but graph pass: LayerNormLSTMCell's step"), std::string::npos)
        << e.what();
  }
  LSTM single(LSTMOptions(3, 4).single_bias(true).impl(Impl::Fused));  // compiled kernels off: nothing takes it
  EXPECT_THROW(single.forward(Variable(randn({2, 1, 3})), {}), Error);
}

// An empty batch (or no steps) is nothing for a kernel to do: every fused layer gives the generic graph's
// empty outputs and zero states, forward and backward, instead of a crash in the kernel's planning. And
// the SDK's kernels plan an empty batch without dividing by it, called directly.
TEST(FusedLayers, AnEmptyBatchOrSequence) {
  std::vector<LayerCase> layers(std::begin(kLayers), std::end(kLayers));
  layers.push_back({"LayerNormLSTM", [](RecurrentOptions o) { return std::make_shared<LayerNormLSTM>(o); }});
  for (const auto& lc : layers)
    for (Impl impl : {Impl::Auto, Impl::Fused})
      for (const Shape& shape : {Shape{5, 0, 3}, Shape{0, 2, 3}}) {
        auto layer = lc.make(RecurrentOptions(3, 4).bidirectional(true).num_layers(2).impl(impl));
        const Variable x(randn(shape), true);
        const auto r = layer->forward(x, {});
        EXPECT_EQ(r.output.shape(), (Shape{shape[0], shape[1], 8})) << lc.name;
        EXPECT_EQ(r.h_n.shape(), (Shape{4, shape[1], 4})) << lc.name;
        const Variable loss = sum(r.output) + sum(r.h_n);
        if (!loss.requires_grad()) continue;  // no steps: nothing was computed from x or the weights
        loss.backward();
        EXPECT_EQ(x.grad().shape(), shape) << lc.name;
      }
  for (const auto* k : plugins::Registry::global().kernels()) {
    kiln_recurrent_problem p{};
    p.dtype = KILN_FLOAT32, p.steps = 5, p.batch = 0, p.input_size = 3, p.hidden_size = 4, p.has_bias = 1;
    for (int phase : {KILN_FORWARD, KILN_BACKWARD, KILN_LAST_BACKWARD}) {
      p.phase = phase;
      EXPECT_NO_FATAL_FAILURE(k->abi.saved_bytes(&p)) << k->name;
      EXPECT_NO_FATAL_FAILURE(k->abi.work_bytes(&p)) << k->name;
    }
  }
}

}  // namespace
}  // namespace kiln::nn

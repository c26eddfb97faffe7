// Note [Compiled schedule]: a compiled cell's kernel proven by check_plugin against the cell's generic
// graph (outputs and every gradient, float32 and float64, both directions, lengths, without biases),
// and one that cannot compile says why.

#include <gtest/gtest.h>

#include "tests/fusion/softmax_cell.hpp"
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
                                           "lstm_nog", "lstm_niaf", "lstm_noaf", "lstm_cifg", "lstm_np", "lstm_fgr", "layer_norm_lstm"));

TEST(CompiledKernel, ACellThatDoesNotCompileSaysWhy) {
  std::string why;
  EXPECT_EQ(compiled_kernel("softmax_rnn", kiln::testing::softmax_rnn, &why), nullptr);
  EXPECT_NE(why.find("kiln::testing::SoftmaxRNNCell does not compile: op 'softmax'"), std::string::npos) << why;
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

#include "ops/ops.hpp"
#include "sequence/recurrent.hpp"
#include "tensor/parallel.hpp"

namespace kiln::plugins {
namespace {

// Note [Compiled schedule]: the rows' groups depend on the batch alone, so any thread count gives the same
// bits (1 to 4 threads here: 4 on two cores is oversubscribed, which the schedule must survive too), and
// the grouped rows equal the generic graph, uneven groups and program parameters (peepholes) included.
TEST(CompiledKernel, TheSameBitsOnAnyThreadCount) {
  const int before = num_threads();
  for (const char* cell : {"lstm_cifg", "peephole_lstm"}) {
    // First uses (the registries, the proof) out of the way: only the thread count differs below.
    nn::make_recurrent(cell, nn::RecurrentOptions(6, 20).impl(nn::Impl::Compiled))->forward(Variable(randn({2, 2, 6})));
    for (std::int64_t batch : {8, 32, 37}) {
      std::vector<std::vector<double>> runs;
      for (const char* impl : {"generic", "1", "2", "3", "4"}) {
        const bool generic = std::string(impl) == "generic";
        set_num_threads(generic ? 1 : std::stoi(impl));
        manual_seed(5);
        auto layer = nn::make_recurrent(
            cell, nn::RecurrentOptions(6, 20).bidirectional(true).impl(generic ? nn::Impl::Generic : nn::Impl::Compiled));
        Variable x(randn({7, batch, 6}), true);
        std::vector<std::int64_t> len(static_cast<std::size_t>(batch), 7);
        len[1] = 3;
        const auto r = layer->forward(x, {}, Variable(from_data(len)));
        sum(r.output * r.output).backward();
        std::vector<double> v = r.output.value().to_vector();
        for (double d : x.grad().to_vector()) v.push_back(d);
        for (const auto& [name, p] : layer->named_parameters())
          for (double d : p.grad().to_vector()) v.push_back(d);
        runs.push_back(v);
      }
      set_num_threads(before);
      for (std::size_t i = 2; i < runs.size(); ++i) EXPECT_EQ(runs[1], runs[i]) << cell << " batch " << batch << ", thread count " << i;
      ASSERT_EQ(runs[0].size(), runs[1].size());
      for (std::size_t i = 0; i < runs[0].size(); ++i)
        ASSERT_NEAR(runs[0][i], runs[1][i], 1e-4 * (1 + std::abs(runs[0][i]))) << cell << " batch " << batch << ", value " << i;
    }
  }
}

}  // namespace
}  // namespace kiln::plugins

namespace kiln::plugins {
namespace {

// Hostile edges: an empty batch and an empty sequence end in a correct (empty) result or a clear error.
TEST(CompiledKernel, EmptyBatchesAndSequencesDoNotCrash) {
  for (const Shape& shape : {Shape{0, 3, 6}, Shape{4, 0, 6}}) {
    auto layer = nn::make_recurrent("lstm_cifg", nn::RecurrentOptions(6, 5).bidirectional(true).impl(nn::Impl::Compiled));
    Variable x(randn(shape), true);
    try {
      const auto r = layer->forward(x, {});
      EXPECT_EQ(r.output.shape(), (Shape{shape[0], shape[1], 10}));
      sum(r.output).backward();
    } catch (const Error& e) {
      EXPECT_FALSE(std::string(e.what()).empty());
    }
  }
}

}  // namespace
}  // namespace kiln::plugins

namespace kiln::plugins {
namespace {

// A compiled kernel is named by the registered cell it compiles: Greff's variants share one class
// (GreffLSTMCell), and tables and run results must still tell them apart.
TEST(CompiledKernel, IsNamedByTheRegisteredCell) {
  for (const char* cell : {"lstm_cifg", "lstm_nig", "peephole_lstm"}) {
    const auto layer = nn::make_recurrent(cell, nn::RecurrentOptions(3, 5).impl(nn::Impl::Compiled));
    const Kernel* k = layer->choose_kernel();
    ASSERT_NE(k, nullptr) << cell;
    EXPECT_EQ(k->name, std::string("compiled:") + cell);
    EXPECT_NE(layer->kernel_report().find(std::string("kernel 'compiled:") + cell + "'"), std::string::npos) << layer->kernel_report();
  }
}

}  // namespace
}  // namespace kiln::plugins

namespace kiln::plugins {
namespace {

// Note [Gradients in saved memory]: the last backward of a compiled layer keeps its gradients in the saved
// memory; a backward with retain_graph keeps them in work memory and leaves the saved values intact, so
// a second backward through the same graph gives the same gradients again (the sum of two equals twice
// the generic graph's), for a cell whose projection gradients share columns (LSTM) and one whose do not
// (GRU, with a slice kept as a copy: Note [Saved slices]).
TEST(CompiledKernel, BackwardTwiceWithRetainGraphEqualsTheGenericGraph) {
  for (const char* cell : {"lstm", "gru", "peephole_lstm"}) {
    SCOPED_TRACE(cell);
    std::vector<std::vector<double>> grads;
    for (const nn::Impl impl : {nn::Impl::Generic, nn::Impl::Compiled}) {
      manual_seed(8);
      auto layer = nn::make_recurrent(cell, nn::RecurrentOptions(5, 6).num_layers(2).impl(impl));
      layer->to(kFloat64);
      const Variable x(randn({21, 3, 5}, kFloat64), true);
      const Variable loss = sum(layer->forward(x) * layer->forward(x));
      loss.backward(Tensor(), /*retain_graph=*/true);
      loss.backward();
      std::vector<double> all = x.grad().to_vector();
      for (const auto& [name, p] : layer->named_parameters())
        for (double v : p.grad().to_vector()) all.push_back(v);
      grads.push_back(all);
    }
    ASSERT_EQ(grads[0].size(), grads[1].size());
    for (std::size_t k = 0; k < grads[0].size(); ++k) EXPECT_NEAR(grads[0][k], grads[1][k], 1e-9 * (1 + std::abs(grads[0][k]))) << k;
  }
}

}  // namespace
}  // namespace kiln::plugins

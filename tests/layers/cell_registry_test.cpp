// The cell registry: every cell a tool can name (layers/cell_registry.hpp).

#include <gtest/gtest.h>

#include <stdexcept>

#include "layers/cell_registry.hpp"
#include "layers/research_cells.hpp"
#include "ops/ops.hpp"
#include "sequence/recurrent.hpp"
#include "tensor/random.hpp"

namespace kiln::nn {
namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(CellRegistry, HoldsTheBuiltInCellsWithTheirShapes) {
  const CellRegistry& r = CellRegistry::global();
  for (const char* name : {"rnn_tanh", "rnn_relu", "lstm", "gru", "gru_reset_before", "layer_norm_lstm", "peephole_lstm", "mgu"})
    ASSERT_NE(r.get(name), nullptr) << name;
  EXPECT_EQ(r.at("lstm").gates, 4);
  EXPECT_EQ(r.at("lstm").states, 2u);
  EXPECT_EQ(r.at("gru").gates, 3);
  EXPECT_EQ(r.at("mgu").layer_name, "MGU");
  using Shapes = std::vector<std::pair<std::string, Shape>>;
  EXPECT_EQ(r.at("lstm").parameter_shapes(3, 5),
            (Shapes{{"weight_ih", {20, 3}}, {"weight_hh", {20, 5}}, {"bias_ih", {20}}, {"bias_hh", {20}}}));
  const Shapes peephole = r.at("peephole_lstm").parameter_shapes(3, 5);
  EXPECT_EQ(peephole.back(), (std::pair<std::string, Shape>{"weight_peephole", {3, 5}}));
  // The factory takes the layer's options.
  const auto relu = r.at("rnn_relu").make(3, 5, RecurrentOptions(3, 5).bias(false));
  EXPECT_EQ(relu->named_parameters(false).size(), 2u);
}

TEST(CellRegistry, TakesAUsersCellAndChecksItsSpec) {
  CellRegistry r;  // a registry of one's own, as a plugin library fills before Kiln merges it
  auto make_mgu = [](std::int64_t in, std::int64_t h, const RecurrentOptions&) { return std::make_shared<MGUCell>(in, h); };
  r.add({"my_mgu", "a minimal gated unit", 2, 1, make_mgu});
  ASSERT_NE(r.get("my_mgu"), nullptr);
  EXPECT_EQ(r.at("my_mgu").layer_name, "my_mgu");
  auto refused = [&](CellSpec spec) {
    try {
      r.add(std::move(spec));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_TRUE(contains(refused({"my_mgu", "again", 2, 1, make_mgu}), "cell 'my_mgu' is already registered"));
  EXPECT_TRUE(contains(refused({"", "no name", 2, 1, make_mgu}), "a cell needs a name"));
  EXPECT_TRUE(contains(refused({"no_factory", "", 2, 1, nullptr}), "cell 'no_factory' has no factory"));
  EXPECT_TRUE(contains(refused({"wrong_states", "", 2, 2, make_mgu}), "registered with 2 state tensor(s), but MGUCell has 1"));
  EXPECT_TRUE(contains(refused({"wrong_gates", "", 3, 1, make_mgu}),
                       "registered with 3 gates, so weight_ih should be [15, 3] for input 3 and hidden 5, got [10, 3]"));
  EXPECT_TRUE(contains(refused({"throws", "", 2, 1,
                                [](std::int64_t, std::int64_t, const RecurrentOptions&) -> std::shared_ptr<RecurrentCell> {
                                  throw std::runtime_error("no such cell today");
                                }}),
                       "cell 'throws': its factory failed: no such cell today"));
  EXPECT_EQ(r.cells().size(), 1u);  // none of the refused went in
}

TEST(CellRegistry, AnUnknownNameListsTheCellsAndTheNearest) {
  try {
    CellRegistry::global().at("peephole_lsmt");
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "unknown cell 'peephole_lsmt' (did you mean 'peephole_lstm'?); registered cells: rnn_tanh, "))
        << e.what();
  }
  try {
    CellRegistry::global().at("transformer");
    FAIL();
  } catch (const Error& e) {
    EXPECT_FALSE(contains(e.what(), "did you mean")) << e.what();  // nothing near enough to suggest
  }
}

TEST(CellRegistry, MergesAllOrNothing) {
  CellRegistry a, b;
  auto make = [](std::int64_t in, std::int64_t h, const RecurrentOptions&) { return std::make_shared<MGUCell>(in, h); };
  a.add({"x", "", 2, 1, make});
  b.add({"y", "", 2, 1, make});
  b.add({"x", "", 2, 1, make});
  EXPECT_THROW(a.merge(std::move(b)), Error);
  EXPECT_EQ(a.get("y"), nullptr);
}

}  // namespace
}  // namespace kiln::nn

namespace kiln::nn {
namespace {

// Determinism: the first layer a process makes after manual_seed draws the same weights as any later one.
// Registering the built-in cells on first use makes throwaway cells (checks, Greff's probes), which must
// put the default generator back. (ctest runs each test in a process of its own, so here the registry is
// consulted for the first time.)
TEST(CellRegistry, RegisteringCellsDoesNotMoveTheDefaultGenerator) {
  std::vector<std::vector<double>> weights;
  for (int k = 0; k < 2; ++k) {
    manual_seed(8);
    weights.push_back(make_recurrent("lstm", RecurrentOptions(5, 6))->parameter("weight_ih_l0").value().to_vector());
  }
  EXPECT_EQ(weights[0], weights[1]);
  manual_seed(8);
  const double first = randn({1}, kFloat64).to_vector()[0];
  manual_seed(8);
  const auto shapes = CellRegistry::global().at("lstm_cifg").parameter_shapes(3, 4);
  EXPECT_FALSE(shapes.empty());
  EXPECT_EQ(randn({1}, kFloat64).to_vector()[0], first);
}

}  // namespace
}  // namespace kiln::nn

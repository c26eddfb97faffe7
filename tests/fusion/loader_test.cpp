#include <gtest/gtest.h>

#include <cstdlib>

#include "layers/cell_registry.hpp"
#include "sequence/research_layers.hpp"
#include "ops/ops.hpp"
#include "fusion/check_plugin.hpp"
#include "fusion/fused_recurrent.hpp"
#include "plugins/registry.hpp"

namespace kiln::plugins {
namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string refusal(const std::string& path) {
  Registry r;
  register_builtin(r);
  const std::size_t before = r.kernels().size();
  try {
    load_plugin(path, r);
  } catch (const Error& e) {
    EXPECT_EQ(r.kernels().size(), before) << "a refused plugin must add nothing";
    return e.what();
  }
  ADD_FAILURE() << path << " was not refused";
  return "";
}

TEST(Loader, RefusesBadPluginsWithAClearMessage) {
  EXPECT_TRUE(contains(refusal("/nonexistent/libnothing.so"), "plugin /nonexistent/libnothing.so: cannot load it"));
  EXPECT_TRUE(contains(refusal(BAD_NO_ENTRY_PLUGIN), "no entry point: the library exports neither 'kiln_plugin_entry'"));
  EXPECT_TRUE(contains(refusal(BAD_VERSION_PLUGIN), "built for plugin interface version 6, this Kiln speaks versions 1 to 5"));
  EXPECT_TRUE(contains(refusal(BAD_DUPLICATE_PLUGIN), "kernel 'lstm' is already registered by plugin 'builtin' (builtin)"));
  EXPECT_TRUE(contains(refusal(BAD_MALFORMED_PLUGIN), "kernel 'bad_kernel' lacks one of supports"));
  EXPECT_TRUE(contains(refusal(BAD_THROWS_PLUGIN), "kiln_plugin_entry() threw: the entry point failed on purpose"));
}

TEST(Loader, KilnPluginsLoadsWhatItCanAndGoesOn) {
  Registry r;
  register_builtin(r);
  const std::string list = std::string(BAD_VERSION_PLUGIN) + "::" + MGU_PLUGIN;
  ::setenv("KILN_PLUGINS", list.c_str(), 1);
  const auto refused = load_plugins_from_env(r);
  ::unsetenv("KILN_PLUGINS");
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_TRUE(contains(refused[0], "bad_version")) << refused[0];
  ASSERT_NE(r.get("mgu"), nullptr);
  EXPECT_EQ(r.get("mgu")->plugin, "mgu_example");
  EXPECT_EQ(r.get("mgu")->origin, MGU_PLUGIN);
  EXPECT_EQ(r.get("bad_kernel"), nullptr);
}

// A plugin whose kernel fails says so, naming plugin, kernel and message.
TEST(Loader, AFailingKernelRaisesAnErrorNamingIt) {
  Registry r;
  load_plugin(BAD_FAILS_PLUGIN, r);
  const Kernel* k = r.get("bad_kernel");
  ASSERT_NE(k, nullptr);
  nn::RNNCell cell(nn::RNNCellOptions(2, 3).bias(false));
  nn::State state = cell.zero_state(4, kFloat32);
  try {
    run_fused(*k, Variable(zeros({5, 4, 2})), {{&cell, &state, false}}, {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), std::string("fused kernel 'bad_kernel' from plugin 'bad' (") + BAD_FAILS_PLUGIN +
                                       ") failed in forward: deliberate failure")) << e.what();
  }
}

// The external example plugin: built with the SDK's CMake function, loaded by path, it equals the
// generic MGUCell (outputs and every gradient, over check_plugin's grid), and an MGU layer runs it.
TEST(Loader, TheExampleMguPluginMatchesItsGenericCell) {
  if (Registry::global().get("mgu") == nullptr) load_plugin(MGU_PLUGIN);
  const CheckReport report = check_plugin(*Registry::global().get("mgu"));
  EXPECT_TRUE(report.passed()) << report.to_string();
  EXPECT_GT(report.cases, 100);

  manual_seed(4);
  nn::MGU layer(nn::RecurrentOptions(3, 5).num_layers(2).bidirectional(true));
  EXPECT_TRUE(layer.uses_fused());
  const Variable x(randn({6, 2, 3}, kFloat64));
  layer.to(kFloat64);
  const Variable fused = layer.forward(x, {}).output;
  layer.set_impl(nn::Impl::Generic);
  const Variable generic = layer.forward(x, {}).output;
  const auto a = fused.value().to_vector(), b = generic.value().to_vector();
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-12);
}

// A library of cells: registered when the cell registry is next consulted, with the library as origin;
// then every tool takes the cell by name.
TEST(Loader, ACellLibraryRegistersItsCells) {
  load_plugin(CELLS_GOOD_PLUGIN);
  const nn::CellSpec* spec = nn::CellRegistry::global().get("half_rnn");
  ASSERT_NE(spec, nullptr);
  EXPECT_EQ(spec->origin, CELLS_GOOD_PLUGIN);
  EXPECT_EQ(spec->gates, 1);
  auto layer = nn::make_recurrent("half_rnn", nn::RecurrentOptions(3, 4).num_layers(2));
  EXPECT_EQ(layer->forward(Variable(randn({5, 2, 3})), {}).output.shape(), (Shape{5, 2, 4}));
  // No kernel claims it and none computes it, so its step is compiled (Note [Kernel claims] 4).
  std::string why;
  EXPECT_TRUE(layer->uses_fused(&why)) << why;
  EXPECT_NE(layer->kernel_report().find("HalfRNNCell compiled from its step and proven"), std::string::npos) << layer->kernel_report();
  load_plugin(CELLS_GOOD_PLUGIN);     // again: nothing more, no error
  EXPECT_NE(nn::CellRegistry::global().get("half_rnn"), nullptr);
}

// Each way a cell library can go wrong is refused, naming the library and the problem, and registers none
// of its cells.
TEST(Loader, RefusesBadCellLibraries) {
  auto refused_cells = [](const char* path) {
    try {
      load_plugin(path);
      nn::CellRegistry::global();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    ADD_FAILURE() << path << " was not refused";
    return std::string();
  };
  const std::string dup = refused_cells(CELLS_DUPLICATE_PLUGIN);
  EXPECT_TRUE(contains(dup, CELLS_DUPLICATE_PLUGIN) && contains(dup, "is already registered (by builtin)")) << dup;
  EXPECT_EQ(nn::CellRegistry::global().get("half_rnn_dup"), nullptr);  // all or nothing
  const std::string threw = refused_cells(CELLS_THROWS_PLUGIN);
  EXPECT_TRUE(contains(threw, "its cells were not registered: the library's registration failed on purpose")) << threw;
  const std::string other = refused_cells(CELLS_THROWS_OTHER_PLUGIN);
  EXPECT_TRUE(contains(other, "its cells were not registered: an exception that is not a std::exception")) << other;
  const std::string spec = refused_cells(CELLS_SPEC_PLUGIN);
  EXPECT_TRUE(contains(spec, "cell 'half_rnn_bad': registered with 4 gates, so weight_ih should be [20, 3]")) << spec;
  const std::string version = refused_cells(CELLS_VERSION_PLUGIN);
  EXPECT_TRUE(contains(version, "built for Kiln's cell library interface version 2, this Kiln speaks version 1")) << version;
}

}  // namespace
}  // namespace kiln::plugins

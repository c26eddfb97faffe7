#pragma once
// The cell registry: every recurrent cell Kiln's tools can name, built-in or a researcher's own. A cell
// is registered once, by name, with a factory and its shape (gates, state tensors); `kiln bench --cell`,
// `kiln check-plugin` (the cell a kernel claims to equal), the graph pass (the patterns it searches for),
// `kiln plugins` and the examples all look cells up here, so a cell a user registers goes everywhere a
// built-in one goes.
//
//   nn::CellRegistry::global().add({"cifg", "LSTM with coupled input and forget gates", 3, 2,
//       [](std::int64_t in, std::int64_t hidden, const nn::RecurrentOptions& o) {
//         return std::make_shared<CIFGCell>(in, hidden, o.bias_); }});
//   auto layer = nn::make_recurrent("cifg", nn::RecurrentOptions(32, 64).num_layers(2));  // sequence/recurrent.hpp
//
// A shared library registers its cells with KILN_REGISTER_CELLS (below) and is loaded like a kernel
// plugin: `--load lib.so`, KILN_PLUGINS, or plugins::load_plugin(path). It is built against the installed
// Kiln (find_package(kiln), kiln_add_plugin(... CELLS)); it may carry fused kernels for its cells too.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kiln/plugin.h"
#include "layers/recurrent_options.hpp"

namespace kiln::nn {

struct CellSpec {
  std::string name;             ///< "lstm", "cifg": what tools and kernels call it
  std::string description;      ///< one line: its math
  std::int64_t gates = 0;       ///< G for gate-shaped weights weight_ih [G*H, I]; 0 when they are not
  std::size_t states = 1;       ///< state tensors: 1 (h), 2 (h, c), or more (lstm_fgr: h, c, i, f, o)
  CellFactory make;             ///< (input_size, hidden_size, the layer's options) -> a cell
  std::string layer_name;       ///< the layer's type name in summaries ("LSTM"); default: the name
  std::string origin = "builtin";  ///< "builtin" or the library that registered it
  /// The cell's parameters and their shapes for these sizes (from a cell it makes), e.g. for "lstm":
  /// weight_ih [4H, I], weight_hh [4H, H], bias_ih [4H], bias_hh [4H].
  std::vector<std::pair<std::string, Shape>> parameter_shapes(std::int64_t input_size, std::int64_t hidden_size) const;
};

class CellRegistry {
 public:
  /// The process-wide registry: Kiln's cells, then those of every loaded plugin library (KILN_PLUGINS,
  /// --load, plugins::load_plugin), registered when the registry is next consulted.
  static CellRegistry& global();

  /// Registers `spec`, after making one small cell to check that it matches the spec (state count,
  /// gate-shaped weights when gates > 0). Refuses, naming the cell, an empty name, a taken name, a
  /// missing factory or a mismatch.
  void add(CellSpec spec);
  /// The cell called `name`, or null.
  const CellSpec* get(const std::string& name) const;
  /// The cell called `name`; otherwise an error listing the registered names (and the closest one).
  const CellSpec& at(const std::string& name) const;
  std::vector<const CellSpec*> cells() const;
  /// Moves every cell of `other` into this registry: all of them or, when one's name is taken, none.
  void merge(CellRegistry&& other);

 private:
  std::vector<std::unique_ptr<CellSpec>> cells_;
  std::size_t libraries_seen_ = 0;  // plugin libraries whose cells are registered (global() only)
};

/// Registers Kiln's cells: rnn_tanh, rnn_relu, lstm, gru, gru_reset_before, layer_norm_lstm,
/// peephole_lstm, mgu.
void register_builtin_cells(CellRegistry& registry);

}  // namespace kiln::nn

/// The version of the C++ interface a cell library is built against: Kiln refuses another.
#define KILN_CELL_LIBRARY_VERSION 1

/// Defines a shared library's cell registration, which Kiln calls when it loads the library:
///   KILN_REGISTER_CELLS(registry) { registry.add({"cifg", "...", 3, 2, make_cifg}); }
#define KILN_REGISTER_CELLS(registry)                                                                    \
  extern "C" KILN_PLUGIN_EXPORT int kiln_cell_library_version(void) { return KILN_CELL_LIBRARY_VERSION; } \
  static void kiln_register_cells_impl(::kiln::nn::CellRegistry& registry);                              \
  extern "C" KILN_PLUGIN_EXPORT void kiln_register_cells(void* registry) {                               \
    kiln_register_cells_impl(*static_cast<::kiln::nn::CellRegistry*>(registry));                         \
  }                                                                                                      \
  static void kiln_register_cells_impl(::kiln::nn::CellRegistry& registry)

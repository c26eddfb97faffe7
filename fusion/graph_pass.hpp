#pragma once
// The graph pass: finds a fused kernel for a cell that did not ask for one. A cell's step, written in
// generic ops, is traced once into an op graph (autograd/graph.hpp); each registered kernel's pattern
// (the step of the generic cell Kiln knows for it, traced the same way) is searched for in it by VF2
// subgraph isomorphism (Boost.Graph), with op names, shapes and operand order respected. A match must
// cover the whole step, map x to x, the state to the state and each of the kernel's parameters to one
// of the cell's, and is then confirmed numerically: the kernel, fed the cell's parameters through that
// mapping, must reproduce the cell's own steps, outputs and gradients, on random inputs (confirm_kernel).
// Recurrent layers with impl Auto or Fused run the pass on a cell with no trusted claim to a kernel
// (fusion/kernel_choice.hpp), and say what it replaced. The patterns are the cells registered under the
// kernels' names (nn::CellRegistry), so a user's registered cell and its kernel are found too.
//
//   const auto m = kiln::plugins::match_cell(my_cell);
//   std::cout << m.report << "\n";   // "MyLSTMCell: step matched kernel 'lstm' (23 ops) with ..."

#include <string>

#include "fusion/fused_recurrent.hpp"

namespace kiln::plugins {

struct CellMatch {
  const Kernel* kernel = nullptr;  ///< null when nothing matched
  ParamMap params;                 ///< kernel parameter -> cell parameter
  int ops = 0;                     ///< ops in the cell's step
  std::string report;              ///< what was replaced, or why nothing was
};

/// Runs the pass on `cell` against every kernel in `registry` whose cell is registered.
CellMatch match_cell(nn::RecurrentCell& cell, const Registry& registry = Registry::global());

}  // namespace kiln::plugins

#pragma once
// Choosing the fused kernel for a cell: the only place a cell meets a kernel. Note [Kernel claims]:
// a kernel runs for a cell only when the cell's math is known to equal it —
//   1. the cell's class claims the kernel (RecurrentCell::kernel_claim) and the cell is exactly that
//      class: trusted;
//   2. the claim is inherited by a subclass (which may have changed step()): the kernel is run once
//      against the cell's own generic steps on random values (confirm_kernel, outputs and gradients)
//      and used only if they agree;
//   3. otherwise the graph pass (fusion/graph_pass.hpp) looks for a registered kernel whose reference
//      cell has the same step, and confirms it the same way;
//   4. otherwise the cell's step is compiled (fusion/compiled_kernel.hpp) and its kernel proven by
//      check_plugin against the generic graph of the cells `make` makes, once per cell class and program
//      (the proof is kept for the process).
// A recurrent layer makes the choice once (again only when a plugin is loaded) and says once when a claim
// was refused and it runs the generic graph.
//
//   const auto choice = kiln::plugins::choose_kernel(cell);
//   if (choice.kernel) std::cout << choice.how;   // "LSTMCell claims kernel 'lstm'"
//   else std::cout << choice.why_not;

#include <string>

#include "fusion/check_plugin.hpp"
#include "fusion/fused_recurrent.hpp"

namespace kiln::plugins {

struct KernelChoice {
  const Kernel* kernel = nullptr;  ///< null: the generic graph
  ParamMap params;                 ///< kernel parameter -> cell parameter when the names differ (graph pass)
  std::string how;                 ///< how the kernel was found, when one was
  std::string why_not;             ///< why no kernel runs, when none does
  bool claim_refused = false;      ///< the cell claimed a kernel (perhaps by inheritance) that was refused
  const ParamMap* param_map() const { return params.empty() ? nullptr : &params; }
};

/// Chooses the kernel for `cell` as Note [Kernel claims] says; `make` makes cells like it of any size
/// (step 4 is skipped without it, or when compiled kernels are off).
KernelChoice choose_kernel(nn::RecurrentCell& cell, const Registry& registry = Registry::global(), const CellMaker& make = nullptr);
/// Step 4 alone: the proven compiled kernel for cells like `cell`, or why there is none.
KernelChoice compiled_choice(const nn::RecurrentCell& cell, const CellMaker& make);
/// Whether step 4 runs (on by default; off: cells without a kernel run the generic graph).
void set_compiled_kernels(bool on);
bool compiled_kernels_enabled();

/// Why `kernel` cannot take `cell`'s state and parameters (their count and names, through `params`
/// when given), or "" when it can.
std::string parameters_mismatch(const Kernel& kernel, const nn::RecurrentCell& cell, const ParamMap* params = nullptr);

}  // namespace kiln::plugins

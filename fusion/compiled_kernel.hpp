#pragma once
// A compiled cell as a fused recurrent kernel (issue 18): the cell's program (Note [Cell programs])
// run over a whole sequence with the projections as GEMMs, behind the same contract as a plugin's kernel
// (kiln/plugin.h), so layers run it as one tape node with lengths and both directions
// (fusion/fused_recurrent.hpp), and check_plugin proves it like any other.
//
// Note [Compiled schedule]: forward projects x for every step in one GEMM per projection of x (its bias
// folded in), then per step one GEMM per projection of a state and the program over the batch rows;
// rows past their sequence's length keep their state and output zeros. It keeps every row's registers
// and the states each step read. Backward runs the program backward per step, one GEMM per projection of
// a state for the previous state's gradient and one for its weight's; the gradients of x, of the x
// weights and of their biases are one GEMM or column sum each over all steps.
//
// The kernel compiles a cell of each size it is asked to run (input, hidden, with or without biases)
// from `make`, once, so one kernel serves a whole layer and check_plugin's sizes.
//
//   auto k = compiled_kernel("lstm_cifg", [](std::int64_t in, std::int64_t h, bool bias) { ... }, &why);
//   Variable y = run_fused(*k, x, {{&cell, &state, false}}, {});

#include <memory>
#include <string>

#include "fusion/cell_program.hpp"
#include "fusion/check_plugin.hpp"
#include "plugins/registry.hpp"

namespace kiln::plugins {

/// A kernel running the compiled step of the cells `make` makes, named "compiled:<cell_name>"; null
/// (with the reason in *why) when the cell's step does not compile.
std::shared_ptr<const Kernel> compiled_kernel(const std::string& cell_name, CellMaker make, std::string* why = nullptr);

}  // namespace kiln::plugins

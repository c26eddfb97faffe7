#pragma once
// Runs a registered recurrent kernel (plugins/registry.hpp) in place of a cell's generic graph: one
// layer, one direction or both, as a single tape node whose backward calls the kernel's backward.
// Tensors cross the C interface of kiln/plugin.h as raw buffers; the memory a kernel keeps for
// backward and its scratch come from Kiln's caching allocator, so pages are reused across steps.
//
//   nn::State state = cell.zero_state(batch, kFloat32);
//   Variable y = plugins::run_fused(*kernel, x, {{&cell, &state, /*reverse=*/false}}, /*lengths=*/{});

#include <map>
#include <string>
#include <vector>

#include "layers/gradient_flow.hpp"
#include "layers/rnn_cell.hpp"
#include "plugins/registry.hpp"

namespace kiln::plugins {

/// Which of the cell's parameters each kernel parameter is, when their names differ (a cell the
/// graph pass matched, fusion/graph_pass.hpp): kernel parameter name -> cell parameter name.
using ParamMap = std::map<std::string, std::string>;

struct Direction {
  nn::RecurrentCell* cell;
  nn::State* state;  ///< the initial state in, the final state out
  bool reverse;
  const ParamMap* params = nullptr;  ///< null: the cell's parameters have the kernel's names
  /// Where backward reports dL/dh_t (Note [Gradient flow]); a kernel declaring KILN_KERNEL_REPORTS_DH only.
  std::shared_ptr<nn::FlowTrace> flow = nullptr;
};

/// Whether `kernel` runs `cell` on x of this dtype and shape; *why says why not.
bool kernel_supports(const Kernel& kernel, const nn::RecurrentCell& cell, DType dtype, std::int64_t steps,
                     std::int64_t batch, const std::vector<std::int64_t>& lengths, bool reverse,
                     std::string* why = nullptr, const ParamMap* params = nullptr);

/// Runs `kernel` over x [T, B, I] for each direction (on Kiln's threads side by side when there are
/// two), recording one tape node. Returns the directions' outputs side by side, [T, B, D*H] (the
/// first direction's H features first, as a bidirectional layer's output); lengths: one per
/// sequence, or empty. Throws kiln::Error naming the plugin and kernel when the kernel fails.
Variable run_fused(const Kernel& kernel, const Variable& x, const std::vector<Direction>& directions,
                   const std::vector<std::int64_t>& lengths);

}  // namespace kiln::plugins

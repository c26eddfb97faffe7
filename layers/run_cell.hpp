#pragma once
// The generic graph of a cell over time: step() called once per step. The reference every fused kernel
// is checked against, and what a recurrent layer runs when no kernel does.
//
// Note [Variable lengths]: with lengths, step t of sequence b is live while t < lengths[b]. A live step
// updates the state and writes its output; past a sequence's end the state is held and the output is
// zero, so the final state is each sequence's state at its own last step, and the reverse direction,
// which walks t = T-1 .. 0, starts at each sequence's own end.

#include <vector>

#include <memory>

#include "layers/rnn_cell.hpp"

namespace kiln::nn {

struct FlowTrace;

/// Runs `cell` over x [T, B, I] with the generic graph (step by step), from `state`, which becomes the
/// final state; returns the outputs [T, B, H]. lengths: one per sequence, or empty (Note [Variable
/// lengths]); reverse walks t = T-1 .. 0. The reference every fused kernel is checked against.
Variable run_cell(RecurrentCell& cell, const Variable& x, State& state, const std::vector<std::int64_t>& lengths = {},
                  bool reverse = false);

/// Per-step masks for lengths: bool [B, 1] for each step, true where the step is live (or, with
/// live = false, past the sequence's end); empty without lengths.
std::vector<Variable> step_masks(const std::vector<std::int64_t>& lengths, std::int64_t steps, bool live);

/// run_cell with the masks made once (step_masks(lengths, T, true) and (.., false); both empty without
/// lengths), for a layer that runs several cells over the same lengths. With `flow`, each step's h
/// reports its gradient there (Note [Gradient flow], layers/gradient_flow.hpp).
Variable run_steps(RecurrentCell& cell, const Variable& seq, State& state, const std::vector<Variable>& live,
                   const std::vector<Variable>& dead, bool reverse, const std::shared_ptr<FlowTrace>& flow = nullptr);

}  // namespace kiln::nn

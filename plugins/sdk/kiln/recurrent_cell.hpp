#pragma once
// The plugin SDK's recurrent-kernel skeleton (kiln/recurrent_kernel.hpp): the contract a Cell writes
// against. What its pointwise functions receive, one batch row of one step at a time, and how it
// declares parameters beyond the gate weights.

#include <cstdint>

namespace kiln::sdk {

/// A parameter of the cell beyond its gate weights (Cell::params): `vectors` vectors of H elements, one
/// tensor shaped [vectors * H], or [vectors, H] when `stacked`. Named as the generic cell names it, so
/// Kiln hands the kernel the cell's tensor. A parameter whose name starts with "bias" may be absent (the
/// cell has no biases): its pointer is then null.
///   static constexpr kiln::sdk::Param params[] = {{"weight_peephole", 3, true}};   // [3, H]
struct Param {
  const char* name;
  int vectors;
  bool stacked = false;
};

/// One batch row of one step, forward. gates [G*H] arrives holding the pre-activations: x W_ih^T +
/// b_ih, plus h W_hh^T + b_hh unless the cell keeps split gates apart (then their recurrent part is in
/// hp) — for late gates, plus m W^T + b by forward_late. Leave in gates (and extra) whatever backward
/// needs. param[k]: the cell's k-th Param, read-only.
template <class T>
struct Forward {
  std::int64_t H;
  T* gates;
  const T* hp;        // [G*H]: h W_hh^T + b_hh (cells with split gates only)
  const T* prev[2];   // the state this step reads
  T* next[2];         // the state it writes
  T* extra;           // [extras * H]
  T* m;               // [H]: forward_early writes the late gates' recurrent input
  const T* const* param;  // Cell::params, in order
  T* scratch;         // [row_scratch * H]: the row's own scratch (Cell::row_scratch), contents undefined
};

/// One batch row of one step, backward. dnext: gradients of the new state (dh includes the output's).
/// backward (or backward_late) writes dprev — the gradient of the previous state through this row's
/// pointwise math (Kiln adds the recurrent GEMM's part of dh) — and dgates, the gradient of the
/// pre-activations (with split gates: dgates for the input side of every gate and the recurrent side of
/// the others, and dhp [split_gates * H] for the recurrent side of the last split_gates gates).
/// backward_early gets dm, finishes the early gates' dgates and adds to dprev. dgates is gates itself
/// when the cell says gradients_in_place, and dhp is extra itself on the last backward when it says
/// recurrent_gradients_in_place. dparam[k]: this row's accumulator for the gradient of Cell::params[k]:
/// add (+=) the row's part; Kiln sums the rows in a fixed order.
template <class T>
struct Backward {
  std::int64_t H;
  const T* gates;
  const T* extra;
  const T* prev[2];
  const T* m;
  const T* dnext[2];
  T* dprev[2];
  T* dgates;
  T* dhp;             // [split_gates * H] (cells with split gates only)
  const T* dm;
  const T* const* param;
  T* const* dparam;
  T* scratch;         // [row_scratch * H], contents undefined
};

}  // namespace kiln::sdk

#pragma once
// The plugin SDK's recurrent-kernel skeleton (kiln/recurrent_kernel.hpp): what a Cell's pointwise
// functions receive, one batch row of one step at a time.

#include <cstdint>

namespace kiln::sdk {

/// One batch row of one step, forward. gates [G*H] arrives holding the pre-activations: x W_ih^T +
/// b_ih, plus h W_hh^T + b_hh unless split_recurrent (then in hp) — for late gates, plus m W^T + b
/// by forward_late. Leave in gates (and extra) whatever backward needs.
template <class T>
struct Forward {
  std::int64_t H;
  T* gates;
  const T* hp;        // [G*H]: h W_hh^T + b_hh (split_recurrent only)
  const T* prev[2];   // the state this step reads
  T* next[2];         // the state it writes
  T* extra;           // [extras * H]
  T* m;               // [H]: forward_early writes the late gates' recurrent input
};

/// One batch row of one step, backward. dnext: gradients of the new state (dh includes the output's).
/// backward (or backward_late) writes dprev — the gradient of the previous state through this row's
/// pointwise math (Kiln adds the recurrent GEMM's part of dh) — and dgates, the gradient of the
/// pre-activations (with split_recurrent: dgates for the input side, and dhp [H] for the last gate's
/// part of hp, the other gates' being the same as their dgates). backward_early gets
/// dm, finishes the early gates' dgates and adds to dprev. dgates is gates itself when the cell says
/// gradients_in_place.
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
  T* dhp;             // [H] (split_recurrent only)
  const T* dm;
};
}  // namespace kiln::sdk

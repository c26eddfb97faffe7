#pragma once
// Note [Spot checks]: check_plugin proves a kernel at the sizes of its grid, the largest of which are
// kCheckedSizes. A call far outside them (a size more than 4 times the largest check_plugin runs) may
// reach code the proof never ran: more blocks of steps, row groups or panels, larger offsets. Under
// Impl::Auto a layer runs a kernel at such a call only after a spot check: once, the kernel against the
// cell's generic graph at that call's steps and batch, in each direction the layer runs, on random
// parameters (the cell's own put back after), comparing outputs and every gradient. The verdict is kept
// for the process per kernel, cell class, dtype and size class (each size rounded up to a power of two,
// so a training run with a new length each batch checks once per class, not per call). A kernel that
// disagrees is not used for that class: the layer warns, with the tensor and the error, and runs the
// generic graph. With set_spot_checks(false) nothing is checked and the layer's note says the kernel runs
// unchecked. Impl::Fused never spot-checks: the caller chose the kernel.
//
//   kiln::plugins::set_spot_checks(false);   // a benchmark that must not pay for a generic step

#include <cstdint>
#include <string>

#include "fusion/fused_recurrent.hpp"

namespace kiln::plugins {

/// The largest sizes check_plugin proves a kernel at (its realistic rows, Note [Realistic sizes]).
struct CheckedSizes {
  std::int64_t steps, batch, input, hidden;
};
inline constexpr CheckedSizes kCheckedSizes{50, 64, 128, 1024};

/// Whether a call of these sizes is far outside kCheckedSizes: some size more than 4 times its largest.
bool far_outside_checked_sizes(std::int64_t steps, std::int64_t batch, std::int64_t input, std::int64_t hidden);

/// Spot checks are on by default.
void set_spot_checks(bool enabled);
bool spot_checks();

/// Why `kernel` must not run `cell` at this call, or "" when it may: the call is within the checked
/// sizes, or its size class was spot-checked and agreed (now or earlier), or spot checks are off (then a
/// note says so, once). `layer` names the layer in notes; both_directions checks the reverse direction too.
std::string spot_check(const Kernel& kernel, nn::RecurrentCell& cell, const ParamMap* params, DType dtype, std::int64_t steps,
                       std::int64_t batch, bool both_directions, const std::string& layer);

}  // namespace kiln::plugins

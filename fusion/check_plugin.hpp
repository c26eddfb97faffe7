#pragma once
// check_plugin: proves a fused kernel equal to the generic graph of its cell. It runs both on random
// inputs over a grid of shapes and options (batch 1, 3 and 11, odd hidden sizes and one wider than a
// packed-GEMM panel, one step and several, per-sequence lengths, both directions, with and without biases, float32 and float64,
// then the realistic sizes users run: hidden 64, 256 and 1024, input 128, batches of 32 and 64, 50 steps) and compares
// the outputs, the final states and the gradient of every input and parameter, under a random
// weighting of the outputs.
//
//   const auto report = kiln::plugins::check_plugin(*Registry::global().get("lstm"));
//   std::cout << report.to_string();   // worst error per tensor and dtype, with the tolerance
//   if (!report.passed()) ...

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "layers/cell_registry.hpp"
#include "fusion/fused_recurrent.hpp"

namespace kiln::plugins {

/// Makes the generic cell a kernel replaces: (input_size, hidden_size, bias) -> cell.
using CellMaker = std::function<std::shared_ptr<nn::RecurrentCell>(std::int64_t, std::int64_t, bool)>;

/// The registered cell a kernel claims to equal (a kernel is named after its cell: "lstm", "gru",
/// "mgu", ...; nn::CellRegistry), as a maker; an empty function when no cell of that name is registered.
CellMaker reference_cell(const std::string& cell_name, const nn::CellRegistry& cells = nn::CellRegistry::global());

struct CheckOptions {
  std::uint64_t seed = 0;
  double tolerance_f32 = 2e-4;  ///< |fused - generic| <= tol * max(1, |generic|), elementwise
  double tolerance_f64 = 1e-9;
  /// Also the realistic sizes of Note [Realistic sizes] (hidden 64, 256, 1024; input 128; batches of 32 and 64;
  /// 50 steps), in float32: what users run, a few seconds a kernel. Their rows say "f32 large".
  bool realistic = true;
};

/// The worst error seen for one tensor and dtype over the grid.
struct TensorCheck {
  std::string tensor;     ///< "output", "h_n", "c_n", "grad x", "grad h0", "grad weight_ih", ...
  std::string dtype;
  double worst = 0;       ///< max |fused - generic| / max(1, |generic|)
  double tolerance = 0;
  std::string worst_case; ///< the grid point where it occurred
  bool passed() const { return worst <= tolerance; }
};

struct CheckReport {
  std::string kernel, plugin;
  int cases = 0;
  std::vector<TensorCheck> tensors;
  std::vector<std::string> skipped;  ///< grid points the kernel declined (supports() != 0), with its reason
  bool passed() const;
  /// What failed first, in a line ("grad weight_hh (float64) differs by ..."), or "" when it passed.
  std::string first_failure() const;
  /// A table: one line per tensor and dtype, worst error and tolerance, then PASS or FAIL.
  std::string to_string() const;
};

/// max |a - b| / max(1, |b|) elementwise (infinite on NaN or a size mismatch): the error check_plugin reports.
double relative_error(const Tensor& a, const Tensor& b);

/// Checks `kernel` against `make_cell` (default: reference_cell(kernel.name); an error when Kiln knows
/// no cell of that name).
CheckReport check_plugin(const Kernel& kernel, const CheckOptions& options = {}, CellMaker make_cell = nullptr);

/// The calls confirm_kernel runs: by default a few steps of a small batch with uneven lengths, in each
/// direction.
struct ConfirmShape {
  std::int64_t steps = 3, batch = 3;
  bool lengths = true;
  std::vector<bool> directions{false, true};  ///< reverse or not, one call each
};

/// Confirms that `kernel` computes `cell`'s own step: with the cell's parameters set to random values
/// for the check (then restored, with their gradients), both paths run the calls of `shape` in the
/// cell's dtype, and every output and gradient is compared (float32's tolerance scaled with the size, as
/// for check_plugin's realistic sizes).
/// params maps kernel parameter names to the cell's (null: the same names). Note [Kernel claims]. A kernel
/// that fails (an error from the plugin) is not confirmed; the report says why (first_failure()).
CheckReport confirm_kernel(const Kernel& kernel, nn::RecurrentCell& cell, const ParamMap* params = nullptr,
                           const CheckOptions& options = {}, const ConfirmShape& shape = {});

/// Checks an attention kernel against the generic scaled_dot_product_attention over layouts (packed
/// projections seq-first and batch-first, separate tensors), shapes, masks and causal, in float32 and
/// float64: the output and the gradient of every input (fusion/check_attention.cpp).
CheckReport check_attention_plugin(const AttentionKernel& kernel, const CheckOptions& options = {});

}  // namespace kiln::plugins

#pragma once
// PyTorch reference cases: a safetensors file holding a module's options (metadata), parameters
// under PyTorch's names, inputs, outputs, loss weights and gradients (format: tests/golden/pytorch/README.md).
// run_reference_case rebuilds the module in Kiln, loads the parameters, runs the inputs, forms the
// same loss (sum over outputs K of sum(output.K * loss_weight.K)), backpropagates and compares every
// output and gradient. `kiln compare CASE.safetensors` prints the result.

#include <map>
#include <string>
#include <vector>

#include "io/safetensors.hpp"
#include "tensor/tensor.hpp"

namespace kiln::interop {

struct TensorComparison {
  std::string name;      ///< "output.out", "grad.x", "grad.param.weight_ih_l0", ...
  Shape shape;
  double max_abs_error = 0;
  double max_rel_error = 0;  ///< max |kiln - ref| / max |ref|
  bool ok = false;
  std::string problem;   ///< set when Kiln has no such tensor or its shape differs
};

struct CaseReport {
  std::string path;
  std::string module;    ///< "nn.LSTM(input_size=4, hidden_size=6, ...)"
  DType dtype = kFloat64;
  double tolerance = 0;  ///< on max_rel_error
  std::vector<TensorComparison> rows;
  std::map<std::string, Tensor> kiln;  ///< Kiln's outputs and gradients, under the reference's names
  bool ok() const;
};

/// Tolerances used by default: 1e-8 relative in float64, 1e-4 in float32.
double default_tolerance(DType dtype);

/// Runs a reference case in `dtype`. Throws kiln::Error naming the file and key for unsupported
/// modules and malformed cases.
/// impl: "generic", "fused" or "auto" (the layer's choice of implementation).
CaseReport run_reference_case(const std::string& path, DType dtype = kFloat64, const std::string& impl = "auto");
/// The same for a case already read; `source` names it in messages (the fuzz target's entry).
CaseReport run_reference_case(const io::Safetensors& file, const std::string& source, DType dtype = kFloat64,
                              const std::string& impl = "auto");

/// The modules run_reference_case can build.
std::vector<std::string> supported_reference_modules();

}  // namespace kiln::interop

#pragma once
// The gradient-check table: cases that gradcheck every op in the catalogue (ops/ops.hpp), with
// broadcasting cases. Run by the tests and by `kiln gradcheck`.

#include <functional>
#include <string>
#include <vector>

#include "autograd/gradcheck.hpp"

namespace kiln {

struct OpCheck {
  std::string op;    ///< the catalogue op this case covers
  std::string name;  ///< unique case name, e.g. "matmul_broadcast_a"
  std::function<std::vector<Variable>()> inputs;
  GradcheckFn fn;
};

const std::vector<OpCheck>& op_checks();
/// Builds the case's inputs (seeded by its name, so every run checks the same numbers) and
/// gradchecks it.
GradcheckResult run_op_check(const OpCheck& check, const GradcheckOptions& options = {});

}  // namespace kiln

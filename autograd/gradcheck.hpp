#pragma once
// gradcheck: compares an op's or a cell's backward against central finite differences.
//
//   auto cell = [&](const std::vector<kiln::Variable>& in) { return my_cell(in[0], in[1]); };
//   auto r = kiln::gradcheck(cell, {x, h});   // inputs that require grad are checked
//   if (!r.ok) std::cerr << r.message;
//
// Note [How gradcheck works]: float64 inputs that require grad are used in place (so a module's own
// parameters can be checked; their gradients are restored afterwards); other float inputs are copied
// to float64. The function's output y is
// projected on a fixed random tensor r (seeded), L = sum(y * r), so one backward pass gives the
// analytic dL/dx; each element of each checked input is then nudged by +-eps and
// (L(x+eps) - L(x-eps)) / 2eps is the numeric derivative. An element passes when
// |analytic - numeric| <= atol + rtol * |numeric|. The worst element (largest error relative to its
// bound) is reported by input, position and both values.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "autograd/variable.hpp"

namespace kiln {

struct GradcheckOptions {
  double eps = 1e-6;
  double rtol = 1e-6;
  double atol = 1e-7;
  std::uint64_t seed = 0;  ///< seeds the projection r
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0;   ///< largest |analytic - numeric| over all checked elements
  double worst_ratio = 0;     ///< largest error / bound (<= 1 passes)
  int worst_input = -1;       ///< which input holds the worst element
  std::int64_t worst_index = -1;  ///< its flat (row-major) position
  double analytic = 0, numeric = 0;
  std::int64_t checked = 0;   ///< elements compared
  std::string message;        ///< one line: pass/fail, the worst element and the tolerance
};

using GradcheckFn = std::function<Variable(const std::vector<Variable>&)>;

GradcheckResult gradcheck(const GradcheckFn& fn, const std::vector<Variable>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace kiln

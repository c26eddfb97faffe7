#pragma once
// gradcheck for modules: checks a function of a module w.r.t. its inputs and every named parameter.
//
//   kiln::nn::LSTMCell cell(kiln::nn::LSTMCellOptions(3, 4));
//   auto r = kiln::nn::gradcheck_module(cell, {x, h, c}, [&](const std::vector<kiln::Variable>& in) {
//     auto s = cell.step(in[0], {in[1], in[2]});
//     return kiln::concat({s[0], s[1]}, 0);
//   });
//   // r.message names the worst element: "... worst parameter weight_hh [16, 4] at [3, 1] ..."

#include "autograd/gradcheck.hpp"
#include "layers/module.hpp"

namespace kiln::nn {

/// Converts `module` to float64 (in place) and the float inputs to float64 leaves, then gradchecks
/// fn(inputs) w.r.t. the inputs that require grad and every parameter of the module.
GradcheckResult gradcheck_module(Module& module, const std::vector<Variable>& inputs, const GradcheckFn& fn,
                                 const GradcheckOptions& options = {});

}  // namespace kiln::nn

#include "layers/gradcheck_module.hpp"

namespace kiln::nn {

GradcheckResult gradcheck_module(Module& module, const std::vector<Variable>& inputs, const GradcheckFn& fn,
                                 const GradcheckOptions& options) {
  module.to(kFloat64);
  std::vector<Variable> all;
  for (const auto& v : inputs)
    all.push_back(is_floating(v.dtype()) ? Variable(v.value().to(kFloat64).clone(), v.requires_grad()) : v);
  const auto params = module.named_parameters();
  for (const auto& [name, p] : params) all.push_back(p);
  const std::size_t n = inputs.size();
  GradcheckResult r = gradcheck([&](const std::vector<Variable>& v) {
    return fn(std::vector<Variable>(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n)));
  }, all, options);
  if (r.worst_input >= static_cast<int>(n)) {
    const auto& [name, p] = params[static_cast<std::size_t>(r.worst_input) - n];
    const std::string from = fmt::format("input {} {}", r.worst_input, p.shape());
    const auto at = r.message.find(from);
    if (at != std::string::npos) r.message.replace(at, from.size(), fmt::format("parameter {} {}", name, p.shape()));
  }
  return r;
}

}  // namespace kiln::nn

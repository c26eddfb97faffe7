#include "layers/linear.hpp"

#include <cmath>

#include "layers/init.hpp"
#include "ops/ops.hpp"

namespace kiln::nn {

Linear::Linear(LinearOptions options) : Module("Linear"), options_(options) {
  KILN_CHECK(options.in_features_ > 0 && options.out_features_ > 0,
             "Linear: in_features and out_features must be positive, got {} and {}", options.in_features_,
             options.out_features_);
  reset();
}

void Linear::reset() {
  const double k = 1.0 / std::sqrt(static_cast<double>(options_.in_features_));
  weight = register_parameter("weight", init::uniform({options_.out_features_, options_.in_features_}, -k, k));
  bias = options_.bias_ ? register_parameter("bias", init::uniform({options_.out_features_}, -k, k)) : Variable();
}

Variable Linear::forward(const Variable& x) {
  KILN_CHECK(x.defined() && x.dim() >= 1 && x.size(-1) == options_.in_features_,
             "Linear(in_features={}): input of shape {} does not end in {}", options_.in_features_,
             x.defined() ? x.shape() : Shape{}, options_.in_features_);
  return linear(x, weight, bias);
}

std::string Linear::extra_repr() const {
  return fmt::format("in_features={}, out_features={}, bias={}", options_.in_features_, options_.out_features_,
                     options_.bias_);
}

}  // namespace kiln::nn

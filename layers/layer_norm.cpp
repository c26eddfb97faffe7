#include "layers/layer_norm.hpp"

#include "layers/init.hpp"
#include "ops/ops.hpp"

namespace kiln::nn {

LayerNorm::LayerNorm(LayerNormOptions options) : Module("LayerNorm"), options_(std::move(options)) {
  KILN_CHECK(options_.normalized_shape_.rank() >= 1 && options_.normalized_shape_.numel() > 0,
             "LayerNorm: normalized_shape must be non-empty, got {}", options_.normalized_shape_);
  reset();
}

void LayerNorm::reset() {
  if (!options_.elementwise_affine_) return;
  weight = register_parameter("weight", init::ones(options_.normalized_shape_));
  bias = register_parameter("bias", init::zeros(options_.normalized_shape_));
}

Variable LayerNorm::forward(const Variable& x) {
  return layer_norm(x, options_.normalized_shape_, weight, bias, options_.eps_);
}

std::string LayerNorm::extra_repr() const {
  return fmt::format("{}, eps={}, elementwise_affine={}", options_.normalized_shape_, options_.eps_,
                     options_.elementwise_affine_);
}

}  // namespace kiln::nn

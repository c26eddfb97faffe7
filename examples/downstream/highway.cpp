#include "highway.hpp"

Highway::Highway(std::int64_t features) : Module("Highway"), features_(features) { reset(); }

void Highway::reset() {
  w_h_ = register_parameter("weight_h", kiln::nn::init::xavier_uniform({features_, features_}));
  b_h_ = register_parameter("bias_h", kiln::zeros({features_}));
  w_t_ = register_parameter("weight_t", kiln::nn::init::xavier_uniform({features_, features_}));
  b_t_ = register_parameter("bias_t", kiln::full({features_}, -1.0));
}

kiln::Variable Highway::forward(const kiln::Variable& x) {
  const kiln::Variable t = kiln::sigmoid(kiln::linear(x, w_t_, b_t_));
  return t * kiln::relu(kiln::linear(x, w_h_, b_h_)) + (1.0 - t) * x;
}

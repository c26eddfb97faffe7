#pragma once
// LayerNorm over the trailing dims, with PyTorch's names (weight, bias) and eps 1e-5.

#include "layers/module.hpp"

namespace kiln::nn {

struct LayerNormOptions {
  explicit LayerNormOptions(Shape normalized_shape) : normalized_shape_(std::move(normalized_shape)) {}
  LayerNormOptions& eps(double e) { eps_ = e; return *this; }
  LayerNormOptions& elementwise_affine(bool on) { elementwise_affine_ = on; return *this; }
  Shape normalized_shape_;
  double eps_ = 1e-5;
  bool elementwise_affine_ = true;
};

class LayerNorm : public Module {
 public:
  explicit LayerNorm(LayerNormOptions options);
  void reset() override;
  Variable forward(const Variable& x) override;
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::string extra_repr() const override;
  Variable weight, bias;

 private:
  LayerNormOptions options_;
};

}  // namespace kiln::nn

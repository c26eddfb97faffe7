#pragma once
// Linear: y = x W^T + b, with PyTorch's parameter names, layout and default initialisation.

#include "layers/module.hpp"

namespace kiln::nn {

struct LinearOptions {
  LinearOptions(std::int64_t in_features, std::int64_t out_features) : in_features_(in_features), out_features_(out_features) {}
  LinearOptions& bias(bool on) { bias_ = on; return *this; }
  std::int64_t in_features_, out_features_;
  bool bias_ = true;
};

/// weight [out, in] and bias [out], both U(-1/sqrt(in), 1/sqrt(in)) as PyTorch's default.
///   auto fc = std::make_shared<kiln::nn::Linear>(kiln::nn::LinearOptions(128, 10));
class Linear : public Module {
 public:
  explicit Linear(LinearOptions options);
  Linear(std::int64_t in_features, std::int64_t out_features) : Linear(LinearOptions(in_features, out_features)) {}
  void reset() override;
  Variable forward(const Variable& x) override;
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::string extra_repr() const override;
  const LinearOptions& options() const { return options_; }
  Variable weight, bias;

 private:
  LinearOptions options_;
};

}  // namespace kiln::nn

#pragma once
// A user's layer: a highway layer (Srivastava et al., 2015), y = t relu(W_h x + b_h) + (1 - t) x with
// the transform gate t = sigmoid(W_t x + b_t), its bias started negative so the layer first carries x.

#include <kiln/kiln.hpp>

class Highway : public kiln::nn::Module {
 public:
  explicit Highway(std::int64_t features);
  void reset() override;
  kiln::Variable forward(const kiln::Variable& x) override;
  std::shared_ptr<kiln::nn::Module> clone() const override { return clone_as(*this); }
  std::string extra_repr() const override { return "features=" + std::to_string(features_); }

 private:
  std::int64_t features_;
  kiln::Variable w_h_, b_h_, w_t_, b_t_;
};

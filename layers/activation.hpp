#pragma once
// Activation modules and Dropout: parameter-free layers for Sequential.

#include "layers/module.hpp"

namespace kiln::nn {

/// An elementwise function as a module: Tanh(), ReLU(), Sigmoid(), GELU().
class Activation : public Module {
 public:
  using Fn = Variable (*)(const Variable&);
  Activation(std::string name, Fn fn) : Module(std::move(name)), fn_(fn) {}
  Variable forward(const Variable& x) override { return fn_(x); }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }

 private:
  Fn fn_;
};

std::shared_ptr<Activation> Tanh();
std::shared_ptr<Activation> ReLU();
std::shared_ptr<Activation> Sigmoid();
std::shared_ptr<Activation> GELU();

/// Zeroes elements with probability p while training (scaling the rest by 1/(1-p)); identity in eval().
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Variable forward(const Variable& x) override;
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::string extra_repr() const override;
  double p() const { return p_; }

 private:
  double p_;
};

}  // namespace kiln::nn

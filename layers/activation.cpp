#include "layers/activation.hpp"

#include "ops/ops.hpp"

namespace kiln::nn {

std::shared_ptr<Activation> Tanh() { return std::make_shared<Activation>("Tanh", [](const Variable& x) { return tanh(x); }); }
std::shared_ptr<Activation> ReLU() { return std::make_shared<Activation>("ReLU", [](const Variable& x) { return relu(x); }); }
std::shared_ptr<Activation> Sigmoid() {
  return std::make_shared<Activation>("Sigmoid", [](const Variable& x) { return sigmoid(x); });
}
std::shared_ptr<Activation> GELU() { return std::make_shared<Activation>("GELU", [](const Variable& x) { return gelu(x); }); }

Dropout::Dropout(double p) : Module("Dropout"), p_(p) {
  KILN_CHECK(p >= 0 && p <= 1, "Dropout: probability must be in [0, 1], got {}", p);
}

Variable Dropout::forward(const Variable& x) { return dropout(x, p_, is_training()); }

std::string Dropout::extra_repr() const { return fmt::format("p={}", p_); }

}  // namespace kiln::nn

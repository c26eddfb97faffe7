#pragma once
// Sequential: modules applied in order, named "0", "1", ... as in PyTorch.
//   auto net = std::make_shared<kiln::nn::Sequential>(std::vector<std::shared_ptr<kiln::nn::Module>>{
//       std::make_shared<kiln::nn::Linear>(4, 8), kiln::nn::Tanh(), std::make_shared<kiln::nn::Linear>(8, 1)});

#include <vector>

#include "layers/module.hpp"

namespace kiln::nn {

class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  explicit Sequential(std::vector<std::shared_ptr<Module>> modules);
  void push_back(std::shared_ptr<Module> module);
  Variable forward(const Variable& x) override;
  std::shared_ptr<Module> clone() const override;
  std::size_t size() const { return modules_.size(); }
  const std::shared_ptr<Module>& operator[](std::size_t i) const { return modules_.at(i); }

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

}  // namespace kiln::nn

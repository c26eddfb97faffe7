#include "layers/sequential.hpp"

namespace kiln::nn {

Sequential::Sequential(std::vector<std::shared_ptr<Module>> modules) : Module("Sequential") {
  for (auto& m : modules) push_back(std::move(m));
}

void Sequential::push_back(std::shared_ptr<Module> module) {
  register_module(std::to_string(modules_.size()), module);
  modules_.push_back(std::move(module));
}

Variable Sequential::forward(const Variable& x) {
  Variable y = x;
  for (std::size_t i = 0; i < modules_.size(); ++i) {
    try {
      y = (*modules_[i])(y);
    } catch (const Error& e) {
      throw Error(fmt::format("Sequential[{}] ({}): {}", i, modules_[i]->type_name(), e.what()));
    }
  }
  return y;
}

std::shared_ptr<Module> Sequential::clone() const {
  auto copy = std::make_shared<Sequential>();
  for (const auto& m : modules_) copy->push_back(m->clone());
  copy->train(is_training());
  return copy;
}

}  // namespace kiln::nn

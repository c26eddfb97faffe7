#pragma once
// ModuleList: modules held in order and named "0", "1", ... (PyTorch's nn.ModuleList), for stacks a
// parent runs itself, e.g. a Transformer's "layers.0.self_attn.in_proj_weight".

#include <vector>

#include "layers/module.hpp"

namespace kiln::nn {

class ModuleList : public Module {
 public:
  ModuleList() : Module("ModuleList") {}
  void push_back(std::shared_ptr<Module> module) {
    register_module(std::to_string(modules_.size()), module);
    modules_.push_back(std::move(module));
  }
  std::size_t size() const { return modules_.size(); }
  const std::shared_ptr<Module>& operator[](std::size_t i) const { return modules_.at(i); }
  /// The i-th module as a T (throws naming both types when it is not one).
  template <class T>
  T& at(std::size_t i) const {
    KILN_CHECK(i < modules_.size(), "ModuleList: index {} out of range for {} modules", i, modules_.size());
    auto* m = dynamic_cast<T*>(modules_[i].get());
    KILN_CHECK(m != nullptr, "ModuleList: module {} is a {}, not the type asked for", i, modules_[i]->type_name());
    return *m;
  }
  std::shared_ptr<Module> clone() const override {
    auto copy = std::make_shared<ModuleList>();
    for (const auto& m : modules_) copy->push_back(m->clone());
    copy->train(is_training());
    return copy;
  }

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

}  // namespace kiln::nn

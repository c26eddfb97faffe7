#include "plugins/registry.hpp"

#include <mutex>
#include <typeinfo>

#include "plugins/builtin/fused_lstm.hpp"

namespace kiln::plugins {

Registry& Registry::global() {
  static Registry* registry = [] {
    auto* r = new Registry;  // never destroyed: kernels may be used during static destruction
    register_builtin(*r);
    return r;
  }();
  return *registry;
}

void Registry::add(RecurrentKernel kernel) {
  KILN_CHECK(!kernel.name.empty() && kernel.supports && kernel.run, "plugin registry: a kernel needs a name, supports() "
             "and run()");
  for (const auto& k : kernels_)
    KILN_CHECK(k->name != kernel.name, "plugin registry: kernel '{}' from '{}' is already registered by '{}'", kernel.name,
               kernel.plugin, k->plugin);
  kernels_.push_back(std::make_unique<RecurrentKernel>(std::move(kernel)));
}

const RecurrentKernel* Registry::find(const nn::RecurrentCell& cell, std::string* why) const {
  std::vector<std::string> reasons;
  for (const auto& k : kernels_) {
    std::string reason;
    if (k->supports(cell, &reason)) return k.get();
    reasons.push_back(k->name + ": " + reason);
  }
  if (why != nullptr)
    *why = kernels_.empty() ? "no fused kernels are registered"
                            : fmt::format("no fused kernel supports cell {} ({})", cell.type_name(), fmt::join(reasons, "; "));
  return nullptr;
}

std::vector<const RecurrentKernel*> Registry::kernels() const {
  std::vector<const RecurrentKernel*> out;
  for (const auto& k : kernels_) out.push_back(k.get());
  return out;
}

namespace {

Variable named(const nn::RecurrentCell& cell, const std::string& name) {
  for (const auto& [n, v] : cell.named_parameters())
    if (n == name) return v;
  return Variable();
}

}  // namespace

void register_builtin(Registry& registry) {
  registry.add(RecurrentKernel{
      "lstm", "builtin",
      "LSTMCell (gate order i, f, g, o) with PyTorch's two biases or none; lengths, both directions; float32/float64",
      [](const nn::RecurrentCell& cell, std::string* why) {
        if (typeid(cell) != typeid(nn::LSTMCell)) {
          if (why) *why = fmt::format("runs LSTMCell only, not {}", cell.type_name());
          return false;
        }
        if (named(cell, "bias").defined()) {
          if (why) *why = "needs PyTorch's two biases (the cell has a single bias)";
          return false;
        }
        return true;
      },
      [](nn::RecurrentCell& cell, const Variable& x, nn::State& state, const std::vector<std::int64_t>& lengths,
         bool reverse) {
        const FusedLSTMResult r = fused_lstm(x, state.at(0), state.at(1), named(cell, "weight_ih"), named(cell, "weight_hh"),
                                             named(cell, "bias_ih"), named(cell, "bias_hh"), lengths, reverse);
        state = {r.h_n, r.c_n};
        return r.output;
      }});
}

}  // namespace kiln::plugins

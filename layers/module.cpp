#include "layers/module.hpp"

#include <algorithm>
#include <ostream>
#include <set>

#include "autograd/grad_mode.hpp"
#include "autograd/tape.hpp"
#include "io/safetensors.hpp"
#include "tensor/random.hpp"

namespace kiln::nn {
namespace {

template <class Hooks>
void erase_hook(Hooks& hooks, std::size_t handle) {
  hooks.erase(std::remove_if(hooks.begin(), hooks.end(), [&](const auto& h) { return h.first == handle; }), hooks.end());
}

}  // namespace

Module::Module(std::string type_name) : type_name_(std::move(type_name)) {}

// Backward hooks see a call through identities recorded around it: the output's passes on the output's
// gradient (and, when the input needs none, calls the hooks), the input's calls the hooks with both.
Variable Module::operator()(const Variable& input) {
  if (backward_hooks_.empty() || !grad_enabled()) {
    const Variable output = forward(input);
    for (const auto& [handle, hook] : std::vector<std::pair<std::size_t, ForwardHook>>(forward_hooks_)) hook(*this, input, output);
    return output;
  }
  struct Call {
    std::vector<BackwardHook> hooks;
    Tensor grad_output;
  };
  auto call = std::make_shared<Call>();
  for (const auto& [handle, hook] : backward_hooks_) call->hooks.push_back(hook);
  const Module* self = this;
  const bool input_tracked = input.requires_grad();
  const Variable in = input_tracked ? record("backward_hook", input.value(), {input}, [call, self](const Tensor& dx, Grads& g) {
    for (const auto& hook : call->hooks) hook(*self, dx, call->grad_output);
    g.add(0, dx);
  })
                                    : input;
  const Variable raw = forward(in);
  const Variable output = record("backward_hook", raw.value(), {raw}, [call, self, input_tracked](const Tensor& dy, Grads& g) {
    call->grad_output = dy;
    if (!input_tracked)
      for (const auto& hook : call->hooks) hook(*self, Tensor(), dy);
    g.add(0, dy);
  });
  for (const auto& [handle, hook] : std::vector<std::pair<std::size_t, ForwardHook>>(forward_hooks_)) hook(*this, input, output);
  return output;
}

std::size_t Module::register_backward_hook(BackwardHook hook) {
  KILN_CHECK(hook != nullptr, "{}: register_backward_hook needs a function", type_name_);
  backward_hooks_.emplace_back(next_hook_, std::move(hook));
  return next_hook_++;
}

void Module::remove_backward_hook(std::size_t handle) {
  erase_hook(backward_hooks_, handle);
}

std::size_t Module::register_forward_hook(ForwardHook hook) {
  KILN_CHECK(hook != nullptr, "{}: register_forward_hook needs a function", type_name_);
  forward_hooks_.emplace_back(next_hook_, std::move(hook));
  return next_hook_++;
}

void Module::remove_forward_hook(std::size_t handle) {
  erase_hook(forward_hooks_, handle);
}

Variable Module::forward(const Variable&) {
  throw Error(fmt::format("{}: this module has no single-input forward(); call its own forward overload", type_name_));
}

std::shared_ptr<Module> Module::clone() const {
  throw Error(fmt::format("{}: clone() is not implemented; add `std::shared_ptr<Module> clone() const override "
                          "{{ return clone_as(*this); }}`", type_name_));
}

namespace {
void check_name(const std::string& owner, const std::string& name, const char* what) {
  KILN_CHECK(!name.empty() && name.find('.') == std::string::npos,
             "{}: {} name '{}' must be non-empty and contain no '.'", owner, what, name);
}
}  // namespace

Variable Module::register_parameter(const std::string& name, const Tensor& value, bool requires_grad) {
  return register_parameter(name, Variable(value, requires_grad));
}

Variable Module::register_parameter(const std::string& name, Variable variable) {
  check_name(type_name_, name, "parameter");
  KILN_CHECK(variable.defined(), "{}: parameter '{}' is undefined", type_name_, name);
  for (auto& [n, v] : params_)
    if (n == name) {
      v = variable;
      return variable;
    }
  for (auto& [n, c] : children_)
    KILN_CHECK(n != name, "{}: '{}' is already the name of a submodule", type_name_, name);
  params_.emplace_back(name, variable);
  return variable;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_name(type_name_, name, "submodule");
  KILN_CHECK(module != nullptr, "{}: submodule '{}' is null", type_name_, name);
  for (auto& [n, v] : params_)
    KILN_CHECK(n != name, "{}: '{}' is already the name of a parameter", type_name_, name);
  for (auto& [n, c] : children_)
    if (n == name) {
      c = std::move(module);
      return;
    }
  children_.emplace_back(name, std::move(module));
}

void Module::clear_registrations() {
  params_.clear();
  children_.clear();
}

void Module::reinitialize_from(const Module& original) {
  clear_registrations();
  const Generator saved = default_generator();  // reset() draws initial values; cloning must not
  reset();
  default_generator() = saved;
  // The copy keeps the original's dtypes (a float64 module clones to float64, as PyTorch's deepcopy).
  const auto theirs = original.named_parameters();
  for (auto& [name, p] : named_parameters())
    for (const auto& [n, q] : theirs)
      if (n == name && q.dtype() != p.dtype()) p.set_value(p.value().to(q.dtype()));
  load_state_dict(original.state_dict());
  train(original.is_training());
}

void Module::collect(const std::string& prefix, bool recurse, std::vector<std::pair<std::string, Variable>>& out) const {
  for (const auto& [n, v] : params_) out.emplace_back(prefix + n, v);
  if (!recurse) return;
  for (const auto& [n, c] : children_) c->collect(prefix + n + ".", true, out);
}

std::vector<std::pair<std::string, Variable>> Module::named_parameters(bool recurse) const {
  std::vector<std::pair<std::string, Variable>> out;
  collect("", recurse, out);
  return out;
}

std::vector<Variable> Module::parameters(bool recurse) const {
  std::vector<Variable> out;
  for (auto& [n, v] : named_parameters(recurse)) out.push_back(v);
  return out;
}

Variable Module::parameter(const std::string& name) const {
  std::vector<std::string> names;
  for (const auto& [n, v] : named_parameters()) {
    if (n == name) return v;
    names.push_back(n);
  }
  throw Error(fmt::format("{}: no parameter '{}'; parameters are: {}", type_name_, name, fmt::join(names, ", ")));
}

std::int64_t Module::num_parameters() const {
  std::int64_t n = 0;
  for (const auto& v : parameters()) n += v.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

void Module::zero_grad() {
  for (auto& v : parameters()) v.zero_grad();
}

void Module::to(DType dtype) {
  KILN_CHECK(is_floating(dtype), "{}: parameters must be float32 or float64, not {}", type_name_, dtype);
  for (auto& v : parameters())
    if (v.dtype() != dtype) {
      v.set_value(v.value().to(dtype));
      v.zero_grad();
    }
}

StateDict Module::state_dict() const {
  StateDict out;
  for (const auto& [n, v] : named_parameters()) out.emplace(n, v.value());
  return out;
}

void Module::load_state_dict(const StateDict& dict, bool strict) {
  const auto named = named_parameters();
  std::vector<std::string> missing, unexpected, wrong;
  std::set<std::string> own;
  for (const auto& [n, v] : named) {
    own.insert(n);
    auto it = dict.find(n);
    if (it == dict.end()) {
      missing.push_back(n);
    } else if (!it->second.defined() || it->second.shape() != v.shape() || !is_floating(it->second.dtype())) {
      wrong.push_back(fmt::format("{} (expected {} {}, got {} {})", n, v.dtype(), v.shape(),
                                  it->second.defined() ? dtype_name(it->second.dtype()) : "undefined",
                                  it->second.defined() ? it->second.shape() : Shape{}));
    }
  }
  for (const auto& [n, t] : dict)
    if (!own.count(n)) unexpected.push_back(n);
  std::vector<std::string> problems;
  if (strict && !missing.empty()) problems.push_back(fmt::format("missing keys: {}", fmt::join(missing, ", ")));
  if (strict && !unexpected.empty()) problems.push_back(fmt::format("unexpected keys: {}", fmt::join(unexpected, ", ")));
  if (!wrong.empty()) problems.push_back(fmt::format("wrong shapes or dtypes: {}", fmt::join(wrong, "; ")));
  KILN_CHECK(problems.empty(), "{}: load_state_dict: {}", type_name_, fmt::join(problems, "; "));
  NoGradGuard no_grad;
  for (const auto& [n, v] : named) {
    auto it = dict.find(n);
    if (it == dict.end()) continue;
    Variable p = v;
    p.set_value(it->second.to(p.dtype()).clone());
  }
}

void Module::print(std::ostream& os, int indent) const {
  const std::string extra = extra_repr();
  if (children_.empty()) {
    os << type_name_ << "(" << extra << ")";
    return;
  }
  // As PyTorch prints it: the extra representation on its own line among the children.
  os << type_name_ << "(\n";
  if (!extra.empty()) os << std::string(static_cast<std::size_t>(indent + 2), ' ') << extra << "\n";
  for (const auto& [n, c] : children_) {
    os << std::string(static_cast<std::size_t>(indent + 2), ' ') << "(" << n << "): ";
    c->print(os, indent + 2);
    os << "\n";
  }
  os << std::string(static_cast<std::size_t>(indent), ' ') << ")";
}

std::ostream& operator<<(std::ostream& os, const Module& m) {
  m.print(os, 0);
  return os;
}

void save(const Module& module, const std::string& path) {
  io::save_safetensors(path, module.state_dict(), {{"format", "pt"}, {"kiln.module", module.type_name()}});
}

void load(Module& module, const std::string& path, bool strict) {
  module.load_state_dict(io::load_safetensors(path).tensors, strict);
}

}  // namespace kiln::nn

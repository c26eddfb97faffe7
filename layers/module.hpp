#pragma once
// Module: the base of every layer, as in PyTorch's C++ frontend. Parameters and submodules are
// registered by name, so names are hierarchical ("encoder.weight_ih_l0") and state dicts read like
// PyTorch's.
//
//   class Affine : public kiln::nn::Module {
//    public:
//     Affine(int in, int out) : Module("Affine"), in_(in), out_(out) { reset(); }
//     void reset() override {
//       w_ = register_parameter("weight", kiln::nn::init::xavier_uniform({out_, in_}));
//       b_ = register_parameter("bias", kiln::zeros({out_}));
//     }
//     kiln::Variable forward(const kiln::Variable& x) override { return kiln::linear(x, w_, b_); }
//     std::shared_ptr<Module> clone() const override { return clone_as(*this); }
//    private:
//     int in_, out_;
//     kiln::Variable w_, b_;
//   };

#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/variable.hpp"

namespace kiln::nn {

/// Parameter name -> value, e.g. {"weight_ih_l0": [24, 4] tensor}. Saved and loaded as safetensors.
using StateDict = std::map<std::string, Tensor>;

class Module {
 public:
  explicit Module(std::string type_name);
  virtual ~Module() = default;

  /// The layer's type, as summaries and error messages show it ("LSTM", "Linear").
  const std::string& type_name() const { return type_name_; }

  /// Single-input forward, for modules that have one (Linear, activations, Sequential). Layers with
  /// richer signatures (LSTM's states and lengths) add their own overloads.
  virtual Variable forward(const Variable& input);
  /// forward(input), then every forward hook, as PyTorch's module(x): call a child as (*child)(x) for
  /// hooks (and summary()'s output shapes) to see it; child->forward(x) runs it unobserved.
  Variable operator()(const Variable& input);

  /// Called after each call through operator() with the module, its input and its output.
  using ForwardHook = std::function<void(const Module& module, const Variable& input, const Variable& output)>;
  /// Registers `hook`; returns a handle for remove_forward_hook.
  std::size_t register_forward_hook(ForwardHook hook);
  void remove_forward_hook(std::size_t handle);

  /// Called during backward for each call through operator() whose output's gradient was reached, with
  /// the module, the gradient of its input (undefined when the input needs none) and that of its output,
  /// as PyTorch's register_full_backward_hook. The hooks are those registered when the call was made;
  /// the module must outlive the backward pass.
  using BackwardHook = std::function<void(const Module& module, const Tensor& grad_input, const Tensor& grad_output)>;
  std::size_t register_backward_hook(BackwardHook hook);
  void remove_backward_hook(std::size_t handle);

  /// Re-creates parameters and submodules from the options (called by constructors and clone()).
  virtual void reset() {}
  /// A deep copy: same options, parameters copied, not shared.
  virtual std::shared_ptr<Module> clone() const;

  std::vector<Variable> parameters(bool recurse = true) const;
  /// (name, parameter) in registration order, depth first: "weight", "encoder.bias_hh_l0", ...
  std::vector<std::pair<std::string, Variable>> named_parameters(bool recurse = true) const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }
  /// The parameter called `name` (dotted for submodules); throws listing the names when absent.
  Variable parameter(const std::string& name) const;
  std::int64_t num_parameters() const;

  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();
  /// Converts every parameter to `dtype` in place (e.g. kFloat64 for gradient checks).
  void to(DType dtype);

  StateDict state_dict() const;
  /// Copies values in by name (converting dtype). Strict: missing, unexpected and wrongly shaped
  /// keys are all reported, by name, in one error, and nothing is changed.
  void load_state_dict(const StateDict& dict, bool strict = true);

  /// "in_features=4, out_features=3, bias=true": shown by operator<< after the type name.
  virtual std::string extra_repr() const { return ""; }

 protected:
  Variable register_parameter(const std::string& name, const Tensor& value, bool requires_grad = true);
  /// Registers an existing variable under `name` (it stays shared with whoever holds it).
  Variable register_parameter(const std::string& name, Variable variable);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }
  /// Drops every registration; reset() then registers afresh.
  void clear_registrations();

  /// clone() for a concrete module T: copy-construct, reset() (without touching the default random
  /// generator), then copy the parameter values.
  template <class T>
  static std::shared_ptr<Module> clone_as(const T& self) {
    auto copy = std::make_shared<T>(self);
    copy->reinitialize_from(self);
    return copy;
  }

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void reinitialize_from(const Module& original);
  void collect(const std::string& prefix, bool recurse, std::vector<std::pair<std::string, Variable>>& out) const;
  void print(std::ostream& os, int indent) const;
  friend std::ostream& operator<<(std::ostream& os, const Module& m);

  std::string type_name_;
  std::vector<std::pair<std::string, Variable>> params_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  std::vector<std::pair<std::size_t, ForwardHook>> forward_hooks_;
  std::vector<std::pair<std::size_t, BackwardHook>> backward_hooks_;
  std::size_t next_hook_ = 0;
  bool training_ = true;
};

/// PyTorch-style nested description: "LSTM(input_size=4, hidden_size=6)" with children indented.
std::ostream& operator<<(std::ostream& os, const Module& m);

/// Saves / loads a module's state dict as safetensors (atomic write; validated read).
void save(const Module& module, const std::string& path);
void load(Module& module, const std::string& path, bool strict = true);

}  // namespace kiln::nn

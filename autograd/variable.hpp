#pragma once
// Variable: a tensor value plus autograd state (gradient, requires_grad). Copies share one variable,
// like torch::Tensor. Ops in ops/ops.hpp take and return Variables and record themselves on the tape.
//
//   kiln::Variable w(kiln::randn({3, 2}), /*requires_grad=*/true);
//   kiln::Variable loss = kiln::sum(kiln::tanh(kiln::matmul(x, w)));
//   loss.backward();
//   std::cout << w.grad();

#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>

#include "tensor/random.hpp"
#include "tensor/tensor.hpp"

namespace kiln {

struct AutogradMeta;
struct VariableImpl;

class Variable {
 public:
  /// An undefined variable; defined() is false.
  Variable() = default;
  /// Wraps a tensor (sharing its storage). Implicit, so a Tensor can be passed to any op.
  Variable(Tensor value, bool requires_grad = false);  // NOLINT(google-explicit-constructor)

  bool defined() const { return impl_ != nullptr; }
  /// True when both refer to the same variable (copies of one Variable share it).
  bool is_same(const Variable& other) const { return impl_ == other.impl_; }
  const Tensor& value() const;
  /// The accumulated gradient (undefined until a backward pass reaches this variable).
  const Tensor& grad() const;
  bool requires_grad() const;
  /// Turns gradient tracking on or off for a leaf: `auto w = kiln::Variable(t).requires_grad_();`
  Variable& requires_grad_(bool on = true);
  /// True for variables made by the user rather than by an op.
  bool is_leaf() const;
  /// Keep the gradient of this non-leaf in grad() during backward (leaves always keep theirs).
  void retain_grad();

  /// Note [Gradient hooks]: `hook` runs on this variable's gradient each time a backward pass has
  /// finished it (a leaf's summed over the pass, before it is added to grad()), as PyTorch's
  /// tensor.register_hook. A hook returning a tensor (same shape and dtype) replaces the gradient that
  /// flows on; one returning nothing (or an undefined Tensor) only looks. Hooks run in registration order.
  ///   auto h = hidden.register_hook([&](const Tensor& g) { norms.push_back(math::norm(g)); });
  ///   h.remove();
  class HookHandle {
   public:
    HookHandle() = default;
    /// Unregisters the hook (nothing when it is gone already).
    void remove();

   private:
    friend class Variable;
    HookHandle(std::weak_ptr<AutogradMeta> meta, std::uint64_t id) : meta_(std::move(meta)), id_(id) {}
    std::weak_ptr<AutogradMeta> meta_;
    std::uint64_t id_ = 0;
  };
  template <class F>
  HookHandle register_hook(F&& hook) {
    if constexpr (std::is_void_v<std::invoke_result_t<F&, const Tensor&>>)
      return add_hook([f = std::forward<F>(hook)](const Tensor& g) mutable {
        f(g);
        return Tensor();
      });
    else
      return add_hook(std::function<Tensor(const Tensor&)>(std::forward<F>(hook)));
  }

  /// Note [Gradient-ready hooks]: `hook` runs with this leaf's accumulated gradient once a backward pass
  /// has finished adding to it: as soon as the walk is past the last op that feeds the leaf, while the
  /// rest of backward still runs (PyTorch's register_post_accumulate_grad_hook). It runs once per pass
  /// that reached the leaf, after the leaf's register_hook hooks. Data-parallel training starts a
  /// bucket's all-reduce from here (dist::DataParallel). Leaves that require grad only.
  HookHandle register_post_accumulate_grad_hook(std::function<void(const Tensor& grad)> hook);

  /// Backpropagates from this variable. A scalar needs no seed; a non-scalar needs a seed gradient of
  /// its own shape. retain_graph keeps the tape records so backward can run through them again.
  void backward(const Tensor& seed = Tensor(), bool retain_graph = false) const;
  /// Drops the gradient (as PyTorch's zero_grad(set_to_none=true)).
  void zero_grad();
  /// Replaces the gradient (e.g. an optimiser or a test setting it directly).
  void set_grad(const Tensor& grad);
  /// Same value, cut from the graph: never requires grad.
  Variable detach() const;
  /// Replaces the value in place for every copy of this variable (shape and dtype may change only
  /// for leaves).
  void set_value(const Tensor& value);

  // Conveniences forwarded to value().
  const Shape& shape() const { return value().shape(); }
  DType dtype() const { return value().dtype(); }
  int dim() const { return value().dim(); }
  std::int64_t size(std::int64_t d) const { return value().size(d); }
  std::int64_t numel() const { return value().numel(); }
  double item() const { return value().item(); }

  /// Internal: register_hook's common path (a hook that may return a replacement gradient).
  HookHandle add_hook(std::function<Tensor(const Tensor&)> hook);

  /// Internal: the autograd record of this variable (null when it does not require grad).
  const std::shared_ptr<AutogradMeta>& meta() const;
  /// Internal: an op result, already registered on the tape under `meta`.
  static Variable from_op(Tensor value, std::shared_ptr<AutogradMeta> meta);

 private:
  std::shared_ptr<VariableImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Variable& v);

}  // namespace kiln

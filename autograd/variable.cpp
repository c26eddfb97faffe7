#include "autograd/variable.hpp"

#include <algorithm>
#include <ostream>

#include "autograd/tape.hpp"
#include "tensor/math.hpp"

namespace kiln {

struct VariableImpl {
  Tensor value;
  std::shared_ptr<AutogradMeta> meta;  // null unless the variable requires grad
};

namespace {
const Tensor kUndefined;

std::shared_ptr<AutogradMeta> make_leaf_meta(const Tensor& value) {
  KILN_CHECK(is_floating(value.dtype()),
             "requires_grad: only float32/float64 tensors can require gradients, got {} {}",
             value.dtype(), value.shape());
  auto meta = std::make_shared<AutogradMeta>();
  meta->shape = value.shape();
  meta->dtype = value.dtype();
  return meta;
}
}  // namespace

Variable::Variable(Tensor value, bool requires_grad) : impl_(std::make_shared<VariableImpl>()) {
  KILN_CHECK(value.defined(), "Variable: cannot wrap an undefined tensor");
  if (requires_grad) impl_->meta = make_leaf_meta(value);
  impl_->value = std::move(value);
}

Variable Variable::from_op(Tensor value, std::shared_ptr<AutogradMeta> meta) {
  Variable v;
  v.impl_ = std::make_shared<VariableImpl>();
  v.impl_->value = std::move(value);
  v.impl_->meta = std::move(meta);
  return v;
}

const Tensor& Variable::value() const {
  KILN_CHECK(defined(), "Variable: value() of an undefined variable");
  return impl_->value;
}

const Tensor& Variable::grad() const {
  KILN_CHECK(defined(), "Variable: grad() of an undefined variable");
  return impl_->meta ? impl_->meta->grad : kUndefined;
}

bool Variable::requires_grad() const { return defined() && impl_->meta != nullptr; }

Variable& Variable::requires_grad_(bool on) {
  KILN_CHECK(defined(), "requires_grad_: undefined variable");
  if (on == requires_grad()) return *this;
  KILN_CHECK(is_leaf(), "requires_grad_: can only change requires_grad of a leaf; use detach() to cut "
             "a result of an op from the graph");
  impl_->meta = on ? make_leaf_meta(impl_->value) : nullptr;
  return *this;
}

bool Variable::is_leaf() const { return !impl_ || !impl_->meta || impl_->meta->node == 0; }

void Variable::retain_grad() {
  KILN_CHECK(requires_grad(), "retain_grad: the variable does not require grad");
  impl_->meta->retain = true;
}

Variable::HookHandle Variable::add_hook(std::function<Tensor(const Tensor&)> hook) {
  KILN_CHECK(hook != nullptr, "register_hook: needs a function");
  KILN_CHECK(requires_grad(), "register_hook: the variable (shape {}) does not require grad, so no gradient reaches a hook",
             defined() ? value().shape() : Shape());
  AutogradMeta& m = *impl_->meta;
  const std::uint64_t id = m.next_hook++;
  m.hooks.emplace_back(id, std::move(hook));
  return HookHandle(impl_->meta, id);
}

Variable::HookHandle Variable::register_post_accumulate_grad_hook(std::function<void(const Tensor& grad)> hook) {
  KILN_CHECK(hook != nullptr, "register_post_accumulate_grad_hook: needs a function");
  KILN_CHECK(requires_grad() && is_leaf(),
             "register_post_accumulate_grad_hook: only a leaf that requires grad accumulates a gradient (this variable, shape {}, {})",
             defined() ? value().shape() : Shape(), requires_grad() ? "is made by an op" : "does not require grad");
  AutogradMeta& m = *impl_->meta;
  const std::uint64_t id = m.next_hook++;
  m.ready_hooks.emplace_back(id, std::move(hook));
  note_ready_hook_registered();
  return HookHandle(impl_->meta, id);
}

void Variable::HookHandle::remove() {
  if (const auto m = meta_.lock()) {
    m->hooks.erase(std::remove_if(m->hooks.begin(), m->hooks.end(), [&](const auto& h) { return h.first == id_; }), m->hooks.end());
    m->ready_hooks.erase(std::remove_if(m->ready_hooks.begin(), m->ready_hooks.end(), [&](const auto& h) { return h.first == id_; }),
                         m->ready_hooks.end());
  }
  meta_.reset();
}

void Variable::backward(const Tensor& seed, bool retain_graph) const {
  KILN_CHECK(defined(), "backward: undefined variable");
  KILN_CHECK(requires_grad(), "backward: the variable (shape {}) does not require grad and has no "
             "gradient function; did you create it under NoGradGuard or from inputs that do not "
             "require grad?", shape());
  Tensor g = seed;
  if (!g.defined()) {
    KILN_CHECK(numel() == 1, "backward: a gradient can be created implicitly only for a scalar output; "
               "got shape {}: pass a seed gradient", shape());
    g = ones(shape(), dtype());
  }
  KILN_CHECK(g.shape() == shape(), "backward: seed gradient shape {} does not match output shape {}",
             g.shape(), shape());
  if (g.dtype() != dtype()) g = g.to(dtype());
  Tape::current().backward(impl_->meta, g, retain_graph);
}

void Variable::zero_grad() {
  if (requires_grad()) impl_->meta->grad = Tensor();
}

void Variable::set_grad(const Tensor& grad) {
  KILN_CHECK(requires_grad(), "set_grad: the variable does not require grad");
  KILN_CHECK(!grad.defined() || (grad.shape() == shape() && grad.dtype() == dtype()),
             "set_grad: gradient {} {} does not match variable {} {}", grad.dtype(), grad.shape(),
             dtype(), shape());
  impl_->meta->grad = grad;
}

Variable Variable::detach() const { return Variable(value()); }

void Variable::set_value(const Tensor& value) {
  KILN_CHECK(defined() && value.defined(), "set_value: undefined variable or value");
  KILN_CHECK(is_leaf() || (value.shape() == shape() && value.dtype() == dtype()),
             "set_value: a non-leaf must keep its shape and dtype ({} {} -> {} {})", dtype(), shape(),
             value.dtype(), value.shape());
  impl_->value = value;
  if (impl_->meta && is_leaf()) {
    impl_->meta->shape = value.shape();
    impl_->meta->dtype = value.dtype();
  }
}

const std::shared_ptr<AutogradMeta>& Variable::meta() const {
  static const std::shared_ptr<AutogradMeta> kNone;
  return impl_ ? impl_->meta : kNone;
}

std::ostream& operator<<(std::ostream& os, const Variable& v) {
  if (!v.defined()) return os << "[ undefined variable ]";
  os << v.value();
  if (v.requires_grad()) os << (v.is_leaf() ? " requires_grad" : " (op result)");
  return os;
}

}  // namespace kiln

#include "optim/optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "tensor/dispatch.hpp"

namespace kiln::optim {

Optimizer::Optimizer(std::vector<Variable> params, double lr, const char* name)
    : params_(std::move(params)), lr_(lr), name_(name) {
  KILN_CHECK(lr >= 0 && std::isfinite(lr), "{}: learning rate must be finite and non-negative, got {}", name, lr);
  for (std::size_t i = 0; i < params_.size(); ++i)
    KILN_CHECK(params_[i].defined() && params_[i].requires_grad() && params_[i].is_leaf(),
               "{}: parameter {} must be a leaf variable that requires grad", name, i);
}

void Optimizer::zero_grad() {
  for (auto& p : params_) p.zero_grad();
}

void Optimizer::set_lr(double lr) {
  KILN_CHECK(lr >= 0 && std::isfinite(lr), "{}: learning rate must be finite and non-negative, got {}", name_, lr);
  lr_ = lr;
}

void Optimizer::init_state(std::size_t count) {
  if (!state_.empty()) return;
  for (const auto& p : params_) {
    std::vector<Tensor> s;
    for (std::size_t k = 0; k < count; ++k) s.push_back(zeros(p.shape(), p.dtype()));
    state_.push_back(std::move(s));
  }
}

std::map<std::string, Tensor> Optimizer::state_dict() const {
  std::map<std::string, Tensor> out;
  out["step"] = from_data(std::vector<std::int64_t>{steps_}, {});
  out["lr"] = from_data(std::vector<double>{lr_}, {});
  const std::vector<std::string> names = buffer_names();
  for (std::size_t i = 0; i < state_.size(); ++i)
    for (std::size_t k = 0; k < state_[i].size() && k < names.size(); ++k)
      out[fmt::format("{}.{}", i, names[k])] = state_[i][k].clone();
  return out;
}

void Optimizer::load_state_dict(const std::map<std::string, Tensor>& state) {
  auto scalar = [&](const char* key, DType dtype) {
    const auto it = state.find(key);
    KILN_CHECK(it != state.end(), "{}: load_state_dict: missing '{}'", name_, key);
    KILN_CHECK(it->second.dtype() == dtype && it->second.numel() == 1, "{}: load_state_dict: '{}' must be one {}, got {} {}",
               name_, key, dtype, it->second.dtype(), it->second.shape());
    return it->second.item();
  };
  const double steps = scalar("step", kInt64), lr = scalar("lr", kFloat64);
  KILN_CHECK(steps >= 0, "{}: load_state_dict: 'step' must be non-negative, got {}", name_, steps);
  KILN_CHECK(lr >= 0 && std::isfinite(lr), "{}: load_state_dict: 'lr' must be finite and non-negative, got {}", name_, lr);
  // Buffers are made on the first step: a state without any is of an optimiser that has not stepped.
  const std::vector<std::string> names = buffer_names();
  std::set<std::string> expected{"step", "lr"};
  std::vector<std::vector<Tensor>> buffers;
  const bool has_buffers = state.size() > expected.size();
  for (std::size_t i = 0; has_buffers && i < params_.size(); ++i) {
    std::vector<Tensor> s;
    for (const auto& b : names) {
      const std::string key = fmt::format("{}.{}", i, b);
      expected.insert(key);
      const auto it = state.find(key);
      KILN_CHECK(it != state.end(), "{}: load_state_dict: missing '{}' (the state is of another optimiser, or of a model "
                 "with other parameters)", name_, key);
      KILN_CHECK(it->second.shape() == params_[i].shape() && it->second.dtype() == params_[i].dtype(),
                 "{}: load_state_dict: '{}' is {} {} but parameter {} is {} {}", name_, key, it->second.dtype(),
                 it->second.shape(), i, params_[i].dtype(), params_[i].shape());
      s.push_back(it->second.clone());
    }
    buffers.push_back(std::move(s));
  }
  for (const auto& [key, t] : state)
    KILN_CHECK(expected.count(key), "{}: load_state_dict: unexpected '{}' (the state is of another optimiser, or of a "
               "model with other parameters)", name_, key);
  steps_ = static_cast<std::int64_t>(steps);
  lr_ = lr;
  state_ = std::move(buffers);
}

namespace {

// Calls f(p, g, n, state pointers) with typed raw buffers for every parameter that has a gradient.
template <class F>
void for_each_param(std::vector<Variable>& params, std::vector<std::vector<Tensor>>& state, const char* name, F&& f) {
  for (std::size_t i = 0; i < params.size(); ++i) {
    const Tensor& grad = params[i].grad();
    if (!grad.defined()) continue;
    Tensor value = params[i].value();
    KILN_CHECK(value.shape() == grad.shape() && value.dtype() == grad.dtype() &&
                   (state.empty() || state[i].empty() || state[i][0].shape() == value.shape()),
               "{}: parameter {} changed shape or dtype since the optimiser was made ({} {})", name, i, value.dtype(),
               value.shape());
    dispatch_float(value.dtype(), name, [&](auto tag) {
      using T = decltype(tag);
      std::vector<T*> bufs;
      if (!state.empty())
        for (auto& s : state[i]) bufs.push_back(s.data<T>());
      f(value.data<T>(), grad.data<T>(), value.numel(), bufs);
    });
  }
}

}  // namespace

SGD::SGD(std::vector<Variable> params, SGDOptions o) : Optimizer(std::move(params), o.lr_, "SGD"), options_(o) {
  KILN_CHECK(o.momentum_ >= 0 && o.weight_decay_ >= 0, "SGD: momentum and weight_decay must be non-negative");
  KILN_CHECK(!o.nesterov_ || (o.momentum_ > 0 && o.dampening_ == 0), "SGD: Nesterov momentum needs momentum > 0 and "
             "dampening 0");
}

void SGD::step() {
  const SGDOptions o = options_;
  const double lr = lr_;
  const bool first = steps_ == 0;
  if (o.momentum_ > 0) init_state(1);
  for_each_param(params_, state_, "SGD", [&](auto* p, const auto* g, std::int64_t n, auto& bufs) {
    using T = std::remove_pointer_t<decltype(p)>;
    for (std::int64_t j = 0; j < n; ++j) {
      T d = g[j] + static_cast<T>(o.weight_decay_) * p[j];
      if (o.momentum_ > 0) {
        T& b = bufs[0][j];
        b = first ? d : static_cast<T>(o.momentum_) * b + static_cast<T>(1 - o.dampening_) * d;
        d = o.nesterov_ ? d + static_cast<T>(o.momentum_) * b : b;
      }
      p[j] -= static_cast<T>(lr) * d;
    }
  });
  ++steps_;
}

std::vector<std::string> SGD::buffer_names() const {
  return options_.momentum_ > 0 ? std::vector<std::string>{"momentum_buffer"} : std::vector<std::string>{};
}
std::vector<std::string> Adam::buffer_names() const { return {"exp_avg", "exp_avg_sq"}; }
std::vector<std::string> RMSprop::buffer_names() const { return {"square_avg", "momentum_buffer", "grad_avg"}; }

Adam::Adam(std::vector<Variable> params, AdamOptions o) : Adam(std::move(params), o, false, "Adam") {}

Adam::Adam(std::vector<Variable> params, AdamOptions o, bool decoupled, const char* name)
    : Optimizer(std::move(params), o.lr_, name), options_(o), decoupled_(decoupled) {
  KILN_CHECK(o.beta1_ >= 0 && o.beta1_ < 1 && o.beta2_ >= 0 && o.beta2_ < 1, "{}: betas must be in [0, 1), got {} and {}",
             name, o.beta1_, o.beta2_);
  KILN_CHECK(o.eps_ >= 0 && o.weight_decay_ >= 0, "{}: eps and weight_decay must be non-negative", name);
}

AdamW::AdamW(std::vector<Variable> params, AdamOptions o) : Adam(std::move(params), o, true, "AdamW") {}

void Adam::step() {
  init_state(2);
  ++steps_;
  const AdamOptions o = options_;
  const double lr = lr_, c1 = 1 - std::pow(o.beta1_, static_cast<double>(steps_)),
               c2 = 1 - std::pow(o.beta2_, static_cast<double>(steps_));
  const bool decoupled = decoupled_;
  for_each_param(params_, state_, name_, [&](auto* p, const auto* g, std::int64_t n, auto& bufs) {
    using T = std::remove_pointer_t<decltype(p)>;
    T* m = bufs[0];
    T* v = bufs[1];
    const T b1 = static_cast<T>(o.beta1_), b2 = static_cast<T>(o.beta2_);
    const T step = static_cast<T>(lr / c1), root_c2 = static_cast<T>(std::sqrt(c2)), eps = static_cast<T>(o.eps_);
    for (std::int64_t j = 0; j < n; ++j) {
      T d = g[j];
      if (decoupled)
        p[j] -= static_cast<T>(lr * o.weight_decay_) * p[j];
      else
        d += static_cast<T>(o.weight_decay_) * p[j];
      m[j] = b1 * m[j] + (1 - b1) * d;
      v[j] = b2 * v[j] + (1 - b2) * d * d;
      p[j] -= step * m[j] / (std::sqrt(v[j]) / root_c2 + eps);
    }
  });
}

RMSprop::RMSprop(std::vector<Variable> params, RMSpropOptions o)
    : Optimizer(std::move(params), o.lr_, "RMSprop"), options_(o) {
  KILN_CHECK(o.alpha_ >= 0 && o.alpha_ <= 1 && o.eps_ >= 0 && o.momentum_ >= 0 && o.weight_decay_ >= 0,
             "RMSprop: alpha must be in [0, 1] and eps, momentum, weight_decay non-negative");
}

void RMSprop::step() {
  init_state(3);  // square_avg, momentum buffer, grad_avg
  ++steps_;
  const RMSpropOptions o = options_;
  const double lr = lr_;
  for_each_param(params_, state_, "RMSprop", [&](auto* p, const auto* g, std::int64_t n, auto& bufs) {
    using T = std::remove_pointer_t<decltype(p)>;
    const T a = static_cast<T>(o.alpha_);
    for (std::int64_t j = 0; j < n; ++j) {
      const T d = g[j] + static_cast<T>(o.weight_decay_) * p[j];
      T& sq = bufs[0][j];
      sq = a * sq + (1 - a) * d * d;
      T avg = sq;
      if (o.centered_) {
        T& ga = bufs[2][j];
        ga = a * ga + (1 - a) * d;
        avg = sq - ga * ga;
      }
      const T denom = std::sqrt(avg) + static_cast<T>(o.eps_);
      if (o.momentum_ > 0) {
        T& b = bufs[1][j];
        b = static_cast<T>(o.momentum_) * b + d / denom;
        p[j] -= static_cast<T>(lr) * b;
      } else {
        p[j] -= static_cast<T>(lr) * d / denom;
      }
    }
  });
}

namespace {

// Calls f(data, n) on every defined gradient, in place, with its element type.
template <class F>
void for_each_grad(const std::vector<Variable>& params, const char* op, F&& f) {
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    Tensor g = p.grad();
    dispatch_float(g.dtype(), op, [&](auto tag) { f(g.data<decltype(tag)>(), g.numel()); });
  }
}

}  // namespace

double clip_grad_norm_(const std::vector<Variable>& params, double max_norm) {
  KILN_CHECK(max_norm > 0, "clip_grad_norm_: max_norm must be positive, got {}", max_norm);
  double total = 0;
  for_each_grad(params, "clip_grad_norm_", [&](const auto* d, std::int64_t n) {
    for (std::int64_t j = 0; j < n; ++j) total += static_cast<double>(d[j]) * static_cast<double>(d[j]);
  });
  total = std::sqrt(total);
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1)
    for_each_grad(params, "clip_grad_norm_", [coef](auto* d, std::int64_t n) {
      using T = std::remove_pointer_t<decltype(d)>;
      for (std::int64_t j = 0; j < n; ++j) d[j] *= static_cast<T>(coef);
    });
  return total;
}

void clip_grad_value_(const std::vector<Variable>& params, double clip_value) {
  KILN_CHECK(clip_value > 0, "clip_grad_value_: clip_value must be positive, got {}", clip_value);
  for_each_grad(params, "clip_grad_value_", [clip_value](auto* d, std::int64_t n) {
    using T = std::remove_pointer_t<decltype(d)>;
    for (std::int64_t j = 0; j < n; ++j) d[j] = std::clamp(d[j], static_cast<T>(-clip_value), static_cast<T>(clip_value));
  });
}

}  // namespace kiln::optim

#pragma once
// Optimisers, as torch.optim. Each updates its parameters in place from their gradients (parameters
// without a gradient are skipped); state buffers are allocated once, on the first step.
//
//   kiln::optim::Adam opt(model.parameters(), kiln::optim::AdamOptions(1e-3).weight_decay(0));
//   for (...) { opt.zero_grad(); loss = ...; loss.backward(); kiln::optim::clip_grad_norm_(model.parameters(), 1.0); opt.step(); }

#include <map>
#include <string>
#include <vector>

#include "autograd/variable.hpp"

namespace kiln::optim {

class Optimizer {
 public:
  Optimizer(std::vector<Variable> params, double lr, const char* name);
  virtual ~Optimizer() = default;
  /// One update of every parameter that has a gradient.
  virtual void step() = 0;
  void zero_grad();
  double lr() const { return lr_; }
  void set_lr(double lr);
  const std::vector<Variable>& params() const { return params_; }
  std::int64_t steps() const { return steps_; }
  const char* name() const { return name_; }

  /// Everything step() depends on besides the parameters and the options, so that a run saved and
  /// restarted continues bit for bit (torch.optim.Optimizer.state_dict): "step" (int64), "lr" (float64),
  /// and each parameter's buffers as "<index>.<buffer>" ("0.exp_avg", "3.momentum_buffer") once made.
  std::map<std::string, Tensor> state_dict() const;
  /// Restores state_dict() of an optimiser of the same kind over parameters of the same shapes and
  /// dtypes. Refuses, naming the key and what was expected, a missing, unknown or misshapen entry; the
  /// optimiser is unchanged then.
  void load_state_dict(const std::map<std::string, Tensor>& state);

 protected:
  /// The names of the buffers step() keeps per parameter, in the order of state_.
  virtual std::vector<std::string> buffer_names() const = 0;
  std::vector<Variable> params_;
  std::vector<std::vector<Tensor>> state_;  // per parameter, e.g. {exp_avg, exp_avg_sq}
  double lr_;
  std::int64_t steps_ = 0;
  const char* name_;
  /// Allocates `count` zero buffers per parameter on the first call.
  void init_state(std::size_t count);
};

struct SGDOptions {
  explicit SGDOptions(double lr) : lr_(lr) {}
  SGDOptions& momentum(double m) { momentum_ = m; return *this; }
  SGDOptions& dampening(double d) { dampening_ = d; return *this; }
  SGDOptions& weight_decay(double w) { weight_decay_ = w; return *this; }
  SGDOptions& nesterov(bool on) { nesterov_ = on; return *this; }
  double lr_, momentum_ = 0, dampening_ = 0, weight_decay_ = 0;
  bool nesterov_ = false;
};

/// g += wd p; b = mu b + (1 - dampening) g (b = g on the first step); g = nesterov ? g + mu b : b; p -= lr g
class SGD : public Optimizer {
 public:
  SGD(std::vector<Variable> params, SGDOptions options);
  void step() override;

 protected:
  std::vector<std::string> buffer_names() const override;

 private:
  SGDOptions options_;
};

struct AdamOptions {
  explicit AdamOptions(double lr = 1e-3) : lr_(lr) {}
  AdamOptions& betas(double b1, double b2) { beta1_ = b1; beta2_ = b2; return *this; }
  AdamOptions& eps(double e) { eps_ = e; return *this; }
  AdamOptions& weight_decay(double w) { weight_decay_ = w; return *this; }
  double lr_, beta1_ = 0.9, beta2_ = 0.999, eps_ = 1e-8, weight_decay_ = 0;
};

/// Adam (Kingma & Ba, 2015); weight decay added to the gradient (L2), as torch.optim.Adam.
/// m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
class Adam : public Optimizer {
 public:
  Adam(std::vector<Variable> params, AdamOptions options = AdamOptions());
  void step() override;

 protected:
  std::vector<std::string> buffer_names() const override;
  Adam(std::vector<Variable> params, AdamOptions options, bool decoupled, const char* name);
  AdamOptions options_;
  bool decoupled_;
};

/// AdamW (Loshchilov & Hutter, 2019): decoupled weight decay p -= lr wd p, default wd 1e-2.
class AdamW : public Adam {
 public:
  AdamW(std::vector<Variable> params, AdamOptions options = AdamOptions().weight_decay(1e-2));
};

struct RMSpropOptions {
  explicit RMSpropOptions(double lr = 1e-2) : lr_(lr) {}
  RMSpropOptions& alpha(double a) { alpha_ = a; return *this; }
  RMSpropOptions& eps(double e) { eps_ = e; return *this; }
  RMSpropOptions& weight_decay(double w) { weight_decay_ = w; return *this; }
  RMSpropOptions& momentum(double m) { momentum_ = m; return *this; }
  RMSpropOptions& centered(bool on) { centered_ = on; return *this; }
  double lr_, alpha_ = 0.99, eps_ = 1e-8, weight_decay_ = 0, momentum_ = 0;
  bool centered_ = false;
};

/// v = a v + (1-a) g^2; d = sqrt(v - mean_g^2 if centered) + eps; b = mu b + g / d (if momentum); p -= lr (b or g / d)
class RMSprop : public Optimizer {
 public:
  RMSprop(std::vector<Variable> params, RMSpropOptions options = RMSpropOptions());
  void step() override;

 protected:
  std::vector<std::string> buffer_names() const override;

 private:
  RMSpropOptions options_;
};

/// Scales all gradients so their global L2 norm is at most max_norm (the cure for exploding
/// gradients). Returns the norm before clipping.
double clip_grad_norm_(const std::vector<Variable>& params, double max_norm);
/// Clamps every gradient element to [-clip_value, clip_value].
void clip_grad_value_(const std::vector<Variable>& params, double clip_value);

}  // namespace kiln::optim

#pragma once
// Learning-rate schedules, as torch.optim.lr_scheduler: call step() once per epoch (or per batch,
// for warmup) after the optimiser's step(); each sets the optimiser's learning rate.
//
//   kiln::optim::CosineAnnealingLR schedule(opt, /*t_max=*/100);
//   for (int epoch = 0; epoch < 100; ++epoch) { train(); schedule.step(); }

#include "optim/optimizer.hpp"

namespace kiln::optim {

class LRScheduler {
 public:
  explicit LRScheduler(Optimizer& optimizer);
  virtual ~LRScheduler() = default;
  /// Advances one step and sets the optimiser's learning rate for the next one.
  void step();
  std::int64_t last_step() const { return step_; }
  double base_lr() const { return base_lr_; }
  /// "step" (int64) and "base_lr" (float64): with the optimiser's own state, all a schedule needs to
  /// go on after a restart. load_state_dict refuses a missing or malformed entry, naming it.
  std::map<std::string, Tensor> state_dict() const;
  void load_state_dict(const std::map<std::string, Tensor>& state);

 protected:
  /// The learning rate after `step` steps.
  virtual double lr_at(std::int64_t step) const = 0;

 private:
  Optimizer& optimizer_;
  double base_lr_;
  std::int64_t step_ = 0;
};

/// lr = base * gamma^(floor(step / step_size))
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma = 0.1);

 protected:
  double lr_at(std::int64_t step) const override;

 private:
  std::int64_t step_size_;
  double gamma_;
};

/// lr = base * gamma^step
class ExponentialLR : public LRScheduler {
 public:
  ExponentialLR(Optimizer& optimizer, double gamma);

 protected:
  double lr_at(std::int64_t step) const override;

 private:
  double gamma_;
};

/// lr = eta_min + (base - eta_min) (1 + cos(pi step / t_max)) / 2, held at eta_min after t_max.
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, std::int64_t t_max, double eta_min = 0);

 protected:
  double lr_at(std::int64_t step) const override;

 private:
  std::int64_t t_max_;
  double eta_min_;
};

/// Linear warmup from base * start_factor to base over `warmup_steps`, then (if total_steps > 0)
/// cosine decay to eta_min at total_steps; constant base otherwise.
class WarmupLR : public LRScheduler {
 public:
  WarmupLR(Optimizer& optimizer, std::int64_t warmup_steps, std::int64_t total_steps = 0, double start_factor = 0.0,
           double eta_min = 0);

 protected:
  double lr_at(std::int64_t step) const override;

 private:
  std::int64_t warmup_, total_;
  double start_factor_, eta_min_;
};

}  // namespace kiln::optim

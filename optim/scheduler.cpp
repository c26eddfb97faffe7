#include "optim/scheduler.hpp"

#include <algorithm>
#include <cmath>

namespace kiln::optim {

LRScheduler::LRScheduler(Optimizer& optimizer) : optimizer_(optimizer), base_lr_(optimizer.lr()) {}

void LRScheduler::step() {
  ++step_;
  optimizer_.set_lr(lr_at(step_));
}

std::map<std::string, Tensor> LRScheduler::state_dict() const {
  return {{"step", from_data(std::vector<std::int64_t>{step_}, {})}, {"base_lr", from_data(std::vector<double>{base_lr_}, {})}};
}

void LRScheduler::load_state_dict(const std::map<std::string, Tensor>& state) {
  auto scalar = [&](const char* key, DType dtype) {
    const auto it = state.find(key);
    KILN_CHECK(it != state.end() && it->second.dtype() == dtype && it->second.numel() == 1,
               "learning-rate schedule: load_state_dict: '{}' must be one {}", key, dtype);
    return it->second.item();
  };
  const double step = scalar("step", kInt64), base = scalar("base_lr", kFloat64);
  KILN_CHECK(step >= 0 && base >= 0 && std::isfinite(base), "learning-rate schedule: load_state_dict: step {} and base_lr {} "
             "must be non-negative", step, base);
  KILN_CHECK(state.size() == 2, "learning-rate schedule: load_state_dict: expected only 'step' and 'base_lr', got {} entries",
             state.size());
  step_ = static_cast<std::int64_t>(step);
  base_lr_ = base;
}

StepLR::StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma)
    : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
  KILN_CHECK(step_size > 0 && gamma > 0, "StepLR: step_size and gamma must be positive, got {} and {}", step_size, gamma);
}

double StepLR::lr_at(std::int64_t step) const {
  return base_lr() * std::pow(gamma_, static_cast<double>(step / step_size_));
}

ExponentialLR::ExponentialLR(Optimizer& optimizer, double gamma) : LRScheduler(optimizer), gamma_(gamma) {
  KILN_CHECK(gamma > 0, "ExponentialLR: gamma must be positive, got {}", gamma);
}

double ExponentialLR::lr_at(std::int64_t step) const { return base_lr() * std::pow(gamma_, static_cast<double>(step)); }

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, std::int64_t t_max, double eta_min)
    : LRScheduler(optimizer), t_max_(t_max), eta_min_(eta_min) {
  KILN_CHECK(t_max > 0 && eta_min >= 0, "CosineAnnealingLR: t_max must be positive and eta_min non-negative");
}

double CosineAnnealingLR::lr_at(std::int64_t step) const {
  const double t = static_cast<double>(std::min(step, t_max_)) / static_cast<double>(t_max_);
  return eta_min_ + (base_lr() - eta_min_) * (1 + std::cos(M_PI * t)) / 2;
}

WarmupLR::WarmupLR(Optimizer& optimizer, std::int64_t warmup_steps, std::int64_t total_steps, double start_factor,
                   double eta_min)
    : LRScheduler(optimizer), warmup_(warmup_steps), total_(total_steps), start_factor_(start_factor), eta_min_(eta_min) {
  KILN_CHECK(warmup_steps >= 0 && start_factor >= 0 && start_factor <= 1 && (total_steps == 0 || total_steps > warmup_steps),
             "WarmupLR: need warmup_steps >= 0, start_factor in [0, 1] and total_steps 0 or > warmup_steps");
  optimizer.set_lr(lr_at(0));
}

double WarmupLR::lr_at(std::int64_t step) const {
  if (step < warmup_)
    return base_lr() * (start_factor_ + (1 - start_factor_) * static_cast<double>(step) / static_cast<double>(warmup_));
  if (total_ == 0) return base_lr();
  const double t = std::min(1.0, static_cast<double>(step - warmup_) / static_cast<double>(total_ - warmup_));
  return eta_min_ + (base_lr() - eta_min_) * (1 + std::cos(M_PI * t)) / 2;
}

}  // namespace kiln::optim

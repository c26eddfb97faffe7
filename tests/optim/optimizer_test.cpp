// Each optimiser's first steps against its update rule written out by hand, convergence on a
// quadratic, clipping and schedules.

#include <cmath>
#include <functional>
#include <memory>

#include <gtest/gtest.h>

#include "ops/ops.hpp"
#include "optim/optimizer.hpp"
#include "optim/scheduler.hpp"

namespace kiln::optim {
namespace {

// f(p) = sum(c * p^2) with c = [1, 10]: gradient 2 c p.
Variable quadratic_loss(const Variable& p) { return sum(Variable(from_data({1.0, 10.0})) * p * p); }

Variable start() { return Variable(from_data({1.0, -0.5}), true); }

std::vector<double> grad_at(const std::vector<double>& p) { return {2 * p[0], 20 * p[1]}; }

template <class Opt, class Rule>
void expect_matches_rule(Opt& opt, Variable& p, Rule rule, int steps) {
  std::vector<double> ref = p.value().to_vector();
  for (int s = 1; s <= steps; ++s) {
    opt.zero_grad();
    quadratic_loss(p).backward();
    opt.step();
    ref = rule(ref, grad_at(ref), s);
    const auto got = p.value().to_vector();
    for (std::size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(got[i], ref[i], 1e-12) << "step " << s << " element " << i;
  }
}

TEST(Optim, SGDWithMomentumNesterovAndWeightDecay) {
  Variable p = start();
  SGD opt({p}, SGDOptions(0.01).momentum(0.9).nesterov(true).weight_decay(0.1));
  std::vector<double> buf(2);
  expect_matches_rule(opt, p, [&](std::vector<double> x, std::vector<double> g, int s) {
    for (int i = 0; i < 2; ++i) {
      const double d = g[i] + 0.1 * x[i];
      buf[i] = s == 1 ? d : 0.9 * buf[i] + d;
      x[i] -= 0.01 * (d + 0.9 * buf[i]);
    }
    return x;
  }, 5);
}

TEST(Optim, AdamAndAdamW) {
  for (bool decoupled : {false, true}) {
    Variable p = start();
    std::unique_ptr<Optimizer> opt;
    if (decoupled)
      opt = std::make_unique<AdamW>(std::vector<Variable>{p}, AdamOptions(0.05).weight_decay(0.1));
    else
      opt = std::make_unique<Adam>(std::vector<Variable>{p}, AdamOptions(0.05).weight_decay(0.1));
    std::vector<double> m(2), v(2);
    expect_matches_rule(*opt, p, [&](std::vector<double> x, std::vector<double> g, int s) {
      for (int i = 0; i < 2; ++i) {
        double d = g[i];
        if (decoupled) x[i] -= 0.05 * 0.1 * x[i]; else d += 0.1 * x[i];
        m[i] = 0.9 * m[i] + 0.1 * d;
        v[i] = 0.999 * v[i] + 0.001 * d * d;
        const double mh = m[i] / (1 - std::pow(0.9, s)), vh = v[i] / (1 - std::pow(0.999, s));
        x[i] -= 0.05 * mh / (std::sqrt(vh) + 1e-8);
      }
      return x;
    }, 5);
  }
}

TEST(Optim, RMSpropCenteredWithMomentum) {
  Variable p = start();
  RMSprop opt({p}, RMSpropOptions(0.01).momentum(0.5).centered(true));
  std::vector<double> sq(2), ga(2), b(2);
  expect_matches_rule(opt, p, [&](std::vector<double> x, std::vector<double> g, int) {
    for (int i = 0; i < 2; ++i) {
      sq[i] = 0.99 * sq[i] + 0.01 * g[i] * g[i];
      ga[i] = 0.99 * ga[i] + 0.01 * g[i];
      b[i] = 0.5 * b[i] + g[i] / (std::sqrt(sq[i] - ga[i] * ga[i]) + 1e-8);
      x[i] -= 0.01 * b[i];
    }
    return x;
  }, 5);
}

TEST(Optim, AllConvergeOnAQuadratic) {
  auto run = [](auto make) {
    Variable p = start();
    auto opt = make(std::vector<Variable>{p});
    for (int i = 0; i < 500; ++i) {
      opt.zero_grad();
      quadratic_loss(p).backward();
      opt.step();
    }
    return quadratic_loss(p).item();
  };
  EXPECT_LT(run([](auto ps) { return SGD(ps, SGDOptions(0.02).momentum(0.9)); }), 1e-8);
  EXPECT_LT(run([](auto ps) { return Adam(ps, AdamOptions(0.05)); }), 1e-4);
  EXPECT_LT(run([](auto ps) { return RMSprop(ps, RMSpropOptions(0.01)); }), 1e-4);
}

TEST(Optim, ParametersWithoutGradientsAreSkipped) {
  Variable used = start(), unused(from_data({3.0}), true);
  SGD opt({used, unused}, SGDOptions(0.1));
  quadratic_loss(used).backward();
  opt.step();
  EXPECT_EQ(unused.value().item(), 3.0);
}

TEST(Optim, BadArgumentsAreRejected) {
  Variable p = start();
  EXPECT_THROW(SGD({p}, SGDOptions(-1)), Error);
  EXPECT_THROW(SGD({p}, SGDOptions(0.1).nesterov(true)), Error);
  EXPECT_THROW(Adam({p}, AdamOptions(0.1).betas(1.0, 0.9)), Error);
  EXPECT_THROW(SGD({Variable(from_data({1.0}))}, SGDOptions(0.1)), Error);  // no requires_grad
}

TEST(Clip, GradNormAndValue) {
  Variable a(from_data({3.0}), true), b(from_data({4.0}), true);
  (a * 1.0 + b * 1.0).backward();  // grads 1, 1
  a.set_grad(from_data({3.0}));
  b.set_grad(from_data({4.0}));
  EXPECT_DOUBLE_EQ(clip_grad_norm_({a, b}, 1.0), 5.0);
  EXPECT_NEAR(a.grad().item(), 0.6, 1e-6);
  EXPECT_NEAR(b.grad().item(), 0.8, 1e-6);
  EXPECT_NEAR(clip_grad_norm_({a, b}, 10.0), 1.0, 1e-6);  // below the limit: unchanged
  EXPECT_NEAR(a.grad().item(), 0.6, 1e-6);
  b.set_grad(from_data({-4.0}));
  clip_grad_value_({a, b}, 0.5);
  EXPECT_DOUBLE_EQ(a.grad().item(), 0.5);
  EXPECT_DOUBLE_EQ(b.grad().item(), -0.5);
}

TEST(Schedules, Values) {
  Variable p = start();
  SGD opt({p}, SGDOptions(1.0));
  StepLR step(opt, 2, 0.5);
  std::vector<double> lrs;
  for (int i = 0; i < 5; ++i) {
    step.step();
    lrs.push_back(opt.lr());
  }
  EXPECT_EQ(lrs, (std::vector<double>{1, 0.5, 0.5, 0.25, 0.25}));
  opt.set_lr(1.0);
  ExponentialLR exp_lr(opt, 0.5);
  exp_lr.step();
  exp_lr.step();
  EXPECT_DOUBLE_EQ(opt.lr(), 0.25);
  opt.set_lr(1.0);
  CosineAnnealingLR cosine(opt, 4, 0.1);
  cosine.step();
  cosine.step();
  EXPECT_NEAR(opt.lr(), 0.55, 1e-12);
  for (int i = 0; i < 5; ++i) cosine.step();
  EXPECT_NEAR(opt.lr(), 0.1, 1e-12);
  opt.set_lr(1.0);
  WarmupLR warm(opt, 4, 8);
  EXPECT_DOUBLE_EQ(opt.lr(), 0.0);
  warm.step();
  EXPECT_DOUBLE_EQ(opt.lr(), 0.25);
  for (int i = 0; i < 3; ++i) warm.step();
  EXPECT_DOUBLE_EQ(opt.lr(), 1.0);
  for (int i = 0; i < 4; ++i) warm.step();
  EXPECT_NEAR(opt.lr(), 0.0, 1e-12);
}

// A run interrupted after 3 steps and restored into fresh objects from the state dicts goes on bit for
// bit as the run that never stopped: every optimiser, with each of its buffers, and the schedule.
TEST(Resume, EveryOptimiserAndScheduleContinuesBitForBit) {
  using Make = std::function<std::unique_ptr<Optimizer>(Variable)>;
  const std::vector<std::pair<std::string, Make>> kinds{
      {"SGD", [](Variable p) { return std::make_unique<SGD>(std::vector<Variable>{p}, SGDOptions(0.01)); }},
      {"SGD momentum", [](Variable p) { return std::make_unique<SGD>(std::vector<Variable>{p}, SGDOptions(0.01).momentum(0.9).nesterov(true)); }},
      {"Adam", [](Variable p) { return std::make_unique<Adam>(std::vector<Variable>{p}, AdamOptions(0.05)); }},
      {"AdamW", [](Variable p) { return std::make_unique<AdamW>(std::vector<Variable>{p}, AdamOptions(0.05).weight_decay(0.1)); }},
      {"RMSprop", [](Variable p) { return std::make_unique<RMSprop>(std::vector<Variable>{p}, RMSpropOptions(0.01).momentum(0.5).centered(true)); }},
  };
  auto train = [](Optimizer& opt, LRScheduler& schedule, Variable& p, int steps) {
    for (int s = 0; s < steps; ++s) {
      opt.zero_grad();
      quadratic_loss(p).backward();
      opt.step();
      schedule.step();
    }
  };
  for (const auto& [name, make] : kinds) {
    Variable whole = start();
    auto opt = make(whole);
    StepLR schedule(*opt, 2, 0.5);
    train(*opt, schedule, whole, 7);

    Variable first = start();
    auto before = make(first);
    StepLR schedule_before(*before, 2, 0.5);
    train(*before, schedule_before, first, 3);
    // "Restart": new parameter, optimiser and schedule from what a checkpoint holds.
    Variable resumed(first.value().clone(), true);
    auto after = make(resumed);
    StepLR schedule_after(*after, 2, 0.5);
    after->load_state_dict(before->state_dict());
    schedule_after.load_state_dict(schedule_before.state_dict());
    train(*after, schedule_after, resumed, 4);
    EXPECT_TRUE(equal(resumed.value(), whole.value())) << name;
    EXPECT_EQ(after->steps(), 7) << name;
    EXPECT_EQ(after->lr(), opt->lr()) << name;
  }
}

TEST(Resume, AMismatchedStateIsRefusedNamingTheKeyAndLeavesTheOptimiser) {
  Variable p = start();
  Adam adam({p}, AdamOptions(0.1));
  adam.zero_grad();
  quadratic_loss(p).backward();
  adam.step();
  auto state = adam.state_dict();
  EXPECT_EQ(state.count("0.exp_avg"), 1u);
  Variable q = start();
  SGD sgd({q}, SGDOptions(0.1));
  try {
    sgd.load_state_dict(state);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("SGD: load_state_dict: unexpected '0.exp_avg'"), std::string::npos) << e.what();
  }
  EXPECT_EQ(sgd.steps(), 0);
  Variable wide(zeros({3}, kFloat64), true);
  Adam other({wide}, AdamOptions(0.1));
  try {
    other.load_state_dict(state);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'0.exp_avg' is float64 [2] but parameter 0 is float64 [3]"), std::string::npos) << e.what();
  }
  state.erase("step");
  EXPECT_THROW(adam.load_state_dict(state), Error);
  state["step"] = from_data(std::vector<double>{1.0}, {});  // a float where an int64 belongs
  EXPECT_THROW(adam.load_state_dict(state), Error);
  StepLR schedule(adam, 2);
  EXPECT_THROW(schedule.load_state_dict({{"step", from_data(std::vector<std::int64_t>{-1}, {})}}), Error);
}

}  // namespace
}  // namespace kiln::optim

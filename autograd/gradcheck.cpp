#include "autograd/gradcheck.hpp"

#include <cmath>

#include "autograd/grad_mode.hpp"
#include "autograd/tape.hpp"
#include "tensor/math.hpp"

namespace kiln {
namespace {

double project(const Tensor& y, const Tensor& r) {
  KILN_CHECK(y.shape() == r.shape(), "gradcheck: the function's output changed shape from {} to {} between calls",
             r.shape(), y.shape());
  const Tensor y64 = y.to(kFloat64);
  const double* a = y64.data<double>();
  const double* b = r.data<double>();
  double s = 0;
  for (std::int64_t i = 0; i < y64.numel(); ++i) s += a[i] * b[i];
  return s;
}

std::string position(const Shape& s, std::int64_t flat) {
  std::vector<std::int64_t> idx(static_cast<std::size_t>(s.rank()));
  for (int k = s.rank() - 1; k >= 0; --k) {
    idx[static_cast<std::size_t>(k)] = s[k] == 0 ? 0 : flat % s[k];
    flat = s[k] == 0 ? 0 : flat / s[k];
  }
  return fmt::format("[{}]", fmt::join(idx, ", "));
}

}  // namespace

GradcheckResult gradcheck(const GradcheckFn& fn, const std::vector<Variable>& inputs, const GradcheckOptions& opt) {
  std::vector<Variable> xs;
  std::vector<Tensor> saved_grads(inputs.size());
  bool any = false;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Variable& v = inputs[i];
    KILN_CHECK(v.defined(), "gradcheck: input {} is undefined", i);
    if (v.dtype() == kFloat64 && v.requires_grad()) {
      // Used in place, so a module's own parameters can be checked; their gradients are restored.
      KILN_CHECK(v.is_leaf(), "gradcheck: input {} is the result of an op; pass leaves (or detach())", i);
      saved_grads[i] = v.grad();
      xs.push_back(v);
      xs.back().zero_grad();
      any = true;
    } else if (is_floating(v.dtype())) {
      xs.emplace_back(v.value().to(kFloat64).clone(), v.requires_grad());
      any = any || v.requires_grad();
    } else {
      xs.emplace_back(v.value());
    }
  }
  struct RestoreGrads {
    std::vector<Variable>& xs;
    const std::vector<Variable>& inputs;
    std::vector<Tensor>& saved;
    ~RestoreGrads() {
      for (std::size_t i = 0; i < xs.size(); ++i)
        if (xs[i].requires_grad() && inputs[i].dtype() == kFloat64) xs[i].set_grad(saved[i]);
    }
  } restore{xs, inputs, saved_grads};
  KILN_CHECK(any, "gradcheck: no input requires grad; mark the inputs to check with requires_grad_()");

  Variable y = fn(xs);
  KILN_CHECK(y.defined() && y.requires_grad(),
             "gradcheck: the function's output does not depend on any input that requires grad");
  KILN_CHECK(y.dtype() == kFloat64, "gradcheck: the function turned float64 inputs into a {} output; "
             "compute in the inputs' dtype", y.dtype());
  Generator gen(opt.seed);
  const Tensor r = randn(y.shape(), kFloat64, &gen);
  y.backward(r);

  GradcheckResult res;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!xs[i].requires_grad()) continue;
    const Tensor analytic = xs[i].grad().defined() ? xs[i].grad() : zeros(xs[i].shape(), kFloat64);
    Tensor x = xs[i].value();  // shares storage with xs[i]: nudging it changes the input
    double* p = x.data<double>();
    const double* a = analytic.data<double>();
    for (std::int64_t j = 0; j < x.numel(); ++j) {
      const double saved = p[j];
      double f[2];
      for (int side = 0; side < 2; ++side) {
        p[j] = saved + (side == 0 ? opt.eps : -opt.eps);
        NoGradGuard no_grad;
        f[side] = project(fn(xs).value(), r);
      }
      p[j] = saved;  // restored bit for bit: inputs used in place end unchanged
      const double numeric = (f[0] - f[1]) / (2 * opt.eps);
      const double err = std::abs(a[j] - numeric);
      const double bound = opt.atol + opt.rtol * std::abs(numeric);
      const double ratio = std::isnan(err) ? INFINITY : err / bound;
      ++res.checked;
      res.max_abs_error = std::max(res.max_abs_error, std::isnan(err) ? INFINITY : err);
      if (ratio > res.worst_ratio || res.worst_input < 0) {
        res.worst_ratio = ratio;
        res.worst_input = static_cast<int>(i);
        res.worst_index = j;
        res.analytic = a[j];
        res.numeric = numeric;
      }
    }
  }
  res.ok = res.worst_ratio <= 1.0;
  const std::string where = res.worst_input < 0 ? "" :
      fmt::format("input {} {} at {}: analytic {:.10g}, numeric {:.10g}", res.worst_input,
                  xs[static_cast<std::size_t>(res.worst_input)].shape(),
                  position(xs[static_cast<std::size_t>(res.worst_input)].shape(), res.worst_index), res.analytic,
                  res.numeric);
  res.message = fmt::format("gradcheck {}: {} elements, max abs error {:.3g}, worst {} (tolerance {:g} + {:g}*|numeric|)",
                            res.ok ? "passed" : "FAILED", res.checked, res.max_abs_error, where, opt.atol, opt.rtol);
  return res;
}

}  // namespace kiln

// Losses, each with PyTorch's reductions (none, mean, sum).

#include <cmath>
#include <limits>

#include "ops/elementwise.hpp"
#include "ops/ops.hpp"

namespace kiln {
namespace {

Variable reduce(const Variable& l, Reduction r) {
  switch (r) {
    case Reduction::None: return l;
    case Reduction::Sum: return sum(l);
    case Reduction::Mean: return mean(l);
  }
  return l;
}

}  // namespace

// l = (x - t)^2
Variable mse_loss(const Variable& input, const Variable& target, Reduction reduction) {
  detail::check_same_dtype(input, target, "mse_loss");
  KILN_CHECK(input.shape() == target.shape(), "mse_loss: input shape {} and target shape {} differ", input.shape(),
             target.shape());
  const Variable d = input - target;
  return reduce(d * d, reduction);
}

// l = max(x, 0) - x t + ln(1 + e^-|x|); dx = dy (sigmoid(x) - t), dt = -dy x
Variable binary_cross_entropy_with_logits(const Variable& logits, const Variable& target, Reduction reduction) {
  const char* op = "binary_cross_entropy_with_logits";
  detail::check_same_dtype(logits, target, op);
  KILN_CHECK(logits.shape() == target.shape(), "{}: logits shape {} and target shape {} differ", op, logits.shape(),
             target.shape());
  const Tensor x = logits.value(), t = target.value();
  Tensor l(x.shape(), x.dtype());
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    auto vx = xtv::flat<T>(x);
    auto vt = xtv::flat<T>(t);
    auto vl = xtv::flat<T>(l);
    xt::noalias(vl) = xt::maximum(vx, T(0)) - vx * vt + xt::log(T(1) + xt::exp(-xt::abs(vx)));
  });
  Variable per = record(op, l, {logits, target}, [x, t, op](const Tensor& dy, Grads& g) {
    dispatch_float(dy.dtype(), op, [&](auto tag) {
      using T = decltype(tag);
      if (g.needs(0)) {
        Tensor dx(x.shape(), x.dtype());
        auto v = xtv::flat<T>(dx);
        xt::noalias(v) = xtv::flat<T>(dy) * (T(1) / (T(1) + xt::exp(-xtv::flat<T>(x))) - xtv::flat<T>(t));
        g.add(0, std::move(dx));
      }
      if (g.needs(1)) {
        Tensor dt(x.shape(), x.dtype());
        auto v = xtv::flat<T>(dt);
        xt::noalias(v) = -xtv::flat<T>(dy) * xtv::flat<T>(x);
        g.add(1, std::move(dt));
      }
    });
  });
  return reduce(per, reduction);
}

// l_i = -logp[i, t_i] (0 where t_i == ignore_index); mean divides by the number of counted targets
Variable nll_loss(const Variable& log_probs, const Variable& target, std::int64_t ignore_index, Reduction reduction) {
  detail::check_float(log_probs, "nll_loss");
  KILN_CHECK(target.defined() && target.dtype() == kInt64, "nll_loss: targets must be int64 class indices, got {} {}",
             target.defined() ? dtype_name(target.dtype()) : "undefined", target.defined() ? target.shape() : Shape{});
  KILN_CHECK(log_probs.dim() >= 2 || (log_probs.dim() == 1 && target.dim() == 0),
             "nll_loss: log-probabilities of shape {} need a class dimension", log_probs.shape());
  // [N, C, d...] with targets [N, d...]: move classes last and flatten to [M, C] and [M].
  if (log_probs.dim() > 2) {
    Shape expected = log_probs.shape();
    expected.erase(1);
    KILN_CHECK(target.shape() == expected, "nll_loss: targets of shape {} do not match log-probabilities {} "
               "(expected {})", target.shape(), log_probs.shape(), expected);
    std::vector<std::int64_t> perm{0};
    for (int i = 2; i < log_probs.dim(); ++i) perm.push_back(i);
    perm.push_back(1);
    const Variable flat_lp = reshape(permute(log_probs, perm), {-1, log_probs.shape()[1]});
    const Variable flat_t(target.value().reshape({-1}));
    Variable l = nll_loss(flat_lp, flat_t, ignore_index, reduction);
    return reduction == Reduction::None ? reshape(l, expected.vec()) : l;
  }
  const Variable lp2 = log_probs.dim() == 1 ? unsqueeze(log_probs, 0) : log_probs;
  const std::int64_t n = lp2.shape()[0], c = lp2.shape()[1];
  KILN_CHECK(target.numel() == n && target.dim() <= 1, "nll_loss: targets of shape {} do not match {} rows of "
             "log-probabilities {}", target.shape(), n, log_probs.shape());
  const Tensor t = target.value();
  const auto* tp = t.data<std::int64_t>();
  std::int64_t counted = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    if (tp[i] == ignore_index) continue;
    KILN_CHECK(tp[i] >= 0 && tp[i] < c, "nll_loss: target {} at position {} is out of range for {} classes", tp[i], i, c);
    ++counted;
  }
  const Shape out_shape = reduction == Reduction::None ? (log_probs.dim() == 1 ? Shape{} : Shape{n}) : Shape{};
  const double scale = reduction == Reduction::Mean ? 1.0 / static_cast<double>(counted) : 1.0;
  Tensor y(out_shape, log_probs.dtype());
  dispatch_float(log_probs.dtype(), "nll_loss", [&](auto tag) {
    using T = decltype(tag);
    const T* lp = lp2.value().data<T>();
    T* yp = y.data<T>();
    T total = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const T li = tp[i] == ignore_index ? T(0) : -lp[i * c + tp[i]];
      if (reduction == Reduction::None) yp[i] = li; else total += li;
    }
    if (reduction == Reduction::Sum) yp[0] = total;
    if (reduction == Reduction::Mean)
      yp[0] = counted == 0 ? std::numeric_limits<T>::quiet_NaN() : total * static_cast<T>(scale);
  });
  const Shape lp_shape = log_probs.shape();
  return record("nll_loss", y, {log_probs, target},
                [t, lp_shape, n, c, ignore_index, reduction, scale](const Tensor& dy, Grads& g) {
    if (!g.needs(0)) return;
    Tensor dx = zeros(lp_shape, dy.dtype());
    dispatch_float(dy.dtype(), "nll_loss", [&](auto tag) {
      using T = decltype(tag);
      const auto* tp = t.data<std::int64_t>();
      const T* d = dy.data<T>();
      T* out = dx.data<T>();
      for (std::int64_t i = 0; i < n; ++i) {
        if (tp[i] == ignore_index) continue;
        out[i * c + tp[i]] = -(reduction == Reduction::None ? d[i] : d[0] * static_cast<T>(scale));
      }
    });
    g.add(0, std::move(dx));
  });
}

Variable cross_entropy(const Variable& logits, const Variable& target, std::int64_t ignore_index, Reduction reduction) {
  detail::check_float(logits, "cross_entropy");
  return nll_loss(log_softmax(logits, logits.dim() == 1 ? 0 : 1), target, ignore_index, reduction);
}

}  // namespace kiln

// Reductions over axes (negative allowed; empty = all) with keepdim.

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <xtensor/xreducer.hpp>
#include <xtensor/xsort.hpp>

#include "ops/elementwise.hpp"
#include "ops/ops.hpp"

namespace kiln {
namespace {

struct ReducePlan {
  std::vector<std::size_t> axes;  // sorted, unique
  std::vector<bool> reduced;      // per input dimension
  Shape kept;                     // input shape with reduced dims set to 1
  Shape out;                      // kept, or with reduced dims removed
  std::int64_t count = 1;         // elements per reduced group
};

ReducePlan plan(const Shape& in, const Axes& axes, bool keepdim, const char* op) {
  ReducePlan p;
  std::vector<bool> reduce(static_cast<std::size_t>(in.rank()), axes.empty());
  for (auto a : axes) {
    const int ax = normalize_axis(a, in.rank(), op);
    KILN_CHECK(!reduce[static_cast<std::size_t>(ax)], "{}: dimension {} appears twice in the axes", op, a);
    reduce[static_cast<std::size_t>(ax)] = true;
  }
  p.reduced = reduce;
  for (int i = 0; i < in.rank(); ++i) {
    if (reduce[static_cast<std::size_t>(i)]) {
      p.axes.push_back(static_cast<std::size_t>(i));
      p.count *= in[i];
      p.kept.push_back(1);
      if (keepdim) p.out.push_back(1);
    } else {
      p.kept.push_back(in[i]);
      p.out.push_back(in[i]);
    }
  }
  return p;
}

// Broadcasts a reduced gradient (shape out, viewed as kept) back to the input shape, times s.
Tensor spread(const Tensor& dy, const ReducePlan& p, const Shape& in, double s) {
  Tensor g = math::expand(dy.reshape(p.kept.vec()), in);
  return s == 1.0 ? g : math::scale(g, s);
}

}  // namespace

// y = sum x over axes; dx = broadcast(dy)
Variable sum(const Variable& x, const Axes& axes, bool keepdim) {
  detail::check_float(x, "sum");
  const ReducePlan p = plan(x.shape(), axes, keepdim, "sum");
  const Tensor y = math::sum_dims(x.value(), p.reduced).reshape(p.out.vec());
  const Shape in = x.shape();
  return record("sum", y, {x}, [p, in](const Tensor& dy, Grads& g) { g.add(0, spread(dy, p, in, 1.0)); });
}

// y = sum x / n; dx = broadcast(dy) / n
Variable mean(const Variable& x, const Axes& axes, bool keepdim) {
  detail::check_float(x, "mean");
  const ReducePlan p = plan(x.shape(), axes, keepdim, "mean");
  KILN_CHECK(p.count > 0, "mean: reducing an empty dimension of shape {}", x.shape());
  const Tensor y = math::scale(math::sum_dims(x.value(), p.reduced), 1.0 / static_cast<double>(p.count)).reshape(p.out.vec());
  const Shape in = x.shape();
  const double inv = 1.0 / static_cast<double>(p.count);
  return record("mean", y, {x}, [p, in, inv](const Tensor& dy, Grads& g) { g.add(0, spread(dy, p, in, inv)); });
}

// y = max x over axes; dx = dy at the first arg-max of each group
Variable max(const Variable& x, const Axes& axes, bool keepdim) {
  detail::check_float(x, "max");
  const ReducePlan p = plan(x.shape(), axes, keepdim, "max");
  KILN_CHECK(p.count > 0, "max: reducing an empty dimension of shape {}", x.shape());
  // Move the reduced axes last: each group is then one contiguous row.
  std::vector<int> perm, inverse(static_cast<std::size_t>(x.dim()));
  for (int i = 0; i < x.dim(); ++i)
    if (std::find(p.axes.begin(), p.axes.end(), static_cast<std::size_t>(i)) == p.axes.end()) perm.push_back(i);
  for (auto a : p.axes) perm.push_back(static_cast<int>(a));
  for (std::size_t i = 0; i < perm.size(); ++i) inverse[static_cast<std::size_t>(perm[i])] = static_cast<int>(i);
  const bool identity = std::is_sorted(perm.begin(), perm.end());
  const Tensor xp = identity ? x.value() : math::permute(x.value(), perm);
  const std::int64_t rows = x.numel() / p.count, cols = p.count;
  auto argmax = std::make_shared<std::vector<std::int64_t>>(static_cast<std::size_t>(rows));
  Tensor y(p.out, x.dtype());
  dispatch_float(x.dtype(), "max", [&](auto tag) {
    using T = decltype(tag);
    const T* src = xp.data<T>();
    T* dst = y.data<T>();
    for (std::int64_t r = 0; r < rows; ++r) {
      const T* row = src + r * cols;
      std::int64_t best = 0;
      for (std::int64_t c = 1; c < cols; ++c)
        if (row[c] > row[best] || (std::isnan(row[c]) && !std::isnan(row[best]))) best = c;
      (*argmax)[static_cast<std::size_t>(r)] = best;
      dst[r] = row[best];
    }
  });
  const Shape permuted = xp.shape();
  return record("max", y, {x}, [argmax, permuted, inverse, identity, cols](const Tensor& dy, Grads& g) {
    Tensor gp = zeros(permuted, dy.dtype());
    dispatch_float(dy.dtype(), "max", [&](auto tag) {
      using T = decltype(tag);
      const T* d = dy.data<T>();
      T* out = gp.data<T>();
      for (std::size_t r = 0; r < argmax->size(); ++r)
        out[static_cast<std::int64_t>(r) * cols + (*argmax)[r]] = d[r];
    });
    g.add(0, identity ? gp : math::permute(gp, inverse));
  });
}

// y = m + ln sum e^(x - m) with m = max x; dx = dy e^(x - y)
Variable logsumexp(const Variable& x, const Axes& axes, bool keepdim) {
  detail::check_float(x, "logsumexp");
  const ReducePlan p = plan(x.shape(), axes, keepdim, "logsumexp");
  KILN_CHECK(p.count > 0, "logsumexp: reducing an empty dimension of shape {}", x.shape());
  Tensor y(p.out, x.dtype());
  dispatch_float(x.dtype(), "logsumexp", [&](auto tag) {
    using T = decltype(tag);
    auto vx = xtv::nd<T>(x.value());
    auto m = xt::eval(xt::amax(vx, p.axes, xt::keep_dims | xt::evaluation_strategy::immediate));
    m = xt::where(xt::isfinite(m), m, T(0));
    auto vy = xtv::nd<T>(y, p.kept);
    xt::noalias(vy) = m + xt::log(xt::sum(xt::exp(vx - m), p.axes, xt::keep_dims | xt::evaluation_strategy::immediate));
  });
  const Tensor xs = x.value();
  return record("logsumexp", y, {x}, [p, xs, y](const Tensor& dy, Grads& g) {
    dispatch_float(dy.dtype(), "logsumexp", [&](auto tag) {
      using T = decltype(tag);
      Tensor dx(xs.shape(), xs.dtype());
      auto vdx = xtv::nd<T>(dx);
      xt::noalias(vdx) = xtv::nd<T>(dy, p.kept) * xt::exp(xtv::nd<T>(xs) - xtv::nd<T>(y, p.kept));
      g.add(0, std::move(dx));
    });
  });
}

// y = sum (x - m)^2 / (n - c), c = 1 when unbiased; dx = dy 2 (x - m) / (n - c)
Variable var(const Variable& x, const Axes& axes, bool unbiased, bool keepdim) {
  detail::check_float(x, "var");
  const ReducePlan p = plan(x.shape(), axes, keepdim, "var");
  const std::int64_t denom = p.count - (unbiased ? 1 : 0);
  KILN_CHECK(denom > 0, "var: {} element(s) per group is too few for the {} variance (input shape {})", p.count,
             unbiased ? "unbiased" : "biased", x.shape());
  Tensor y(p.out, x.dtype());
  Tensor centered(x.shape(), x.dtype());
  dispatch_float(x.dtype(), "var", [&](auto tag) {
    using T = decltype(tag);
    auto vx = xtv::nd<T>(x.value());
    auto vc = xtv::nd<T>(centered);
    xt::noalias(vc) = vx - xt::sum(vx, p.axes, xt::keep_dims | xt::evaluation_strategy::immediate) / static_cast<T>(p.count);
    auto vy = xtv::nd<T>(y, p.kept);
    xt::noalias(vy) = xt::sum(vc * vc, p.axes, xt::keep_dims | xt::evaluation_strategy::immediate) / static_cast<T>(denom);
  });
  return record("var", y, {x}, [p, centered, denom](const Tensor& dy, Grads& g) {
    dispatch_float(dy.dtype(), "var", [&](auto tag) {
      using T = decltype(tag);
      Tensor dx(centered.shape(), centered.dtype());
      auto vdx = xtv::nd<T>(dx);
      xt::noalias(vdx) = xtv::nd<T>(dy, p.kept) * xtv::nd<T>(centered) * (T(2) / static_cast<T>(denom));
      g.add(0, std::move(dx));
    });
  });
}

}  // namespace kiln

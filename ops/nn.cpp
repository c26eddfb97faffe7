// Neural-network functions: softmax, log_softmax, dropout, layer_norm.

#include <cmath>

#include <xtensor/xreducer.hpp>
#include <xtensor/xsort.hpp>

#include "ops/elementwise.hpp"
#include "ops/ops.hpp"
#include "tensor/random.hpp"

namespace kiln {
namespace {

// Softmax-family ops see x as [outer, n, inner] around `dim` and reduce over the middle axis.
Shape around(const Shape& s, int dim) {
  std::int64_t outer = 1, inner = 1;
  for (int i = 0; i < dim; ++i) outer *= s[i];
  for (int i = dim + 1; i < s.rank(); ++i) inner *= s[i];
  return Shape{outer, s[dim], inner};
}

const std::vector<std::size_t> kMiddle{1};
const auto kKeep = xt::keep_dims | xt::evaluation_strategy::immediate;

}  // namespace

// y = e^(x - max) / sum e^(x - max); dx = y (dy - sum(dy y))
Variable softmax(const Variable& x, std::int64_t dim) {
  detail::check_float(x, "softmax");
  const Shape s3 = around(x.shape(), normalize_axis(dim, x.dim(), "softmax"));
  Tensor y(x.shape(), x.dtype());
  dispatch_float(x.dtype(), "softmax", [&](auto tag) {
    using T = decltype(tag);
    auto vx = xtv::nd<T>(x.value(), s3);
    auto vy = xtv::nd<T>(y, s3);
    xt::noalias(vy) = xt::exp(vx - xt::amax(vx, kMiddle, kKeep));
    vy /= xt::sum(vy, kMiddle, kKeep);
  });
  return record("softmax", y, {x}, [y, s3](const Tensor& dy, Grads& g) {
    dispatch_float(dy.dtype(), "softmax", [&](auto tag) {
      using T = decltype(tag);
      Tensor dx(y.shape(), y.dtype());
      auto vy = xtv::nd<T>(y, s3);
      auto vdy = xtv::nd<T>(dy, s3);
      auto vdx = xtv::nd<T>(dx, s3);
      xt::noalias(vdx) = vy * (vdy - xt::sum(vdy * vy, kMiddle, kKeep));
      g.add(0, dx);
    });
  });
}

// y = x - max - ln sum e^(x - max); dx = dy - e^y sum(dy)
Variable log_softmax(const Variable& x, std::int64_t dim) {
  detail::check_float(x, "log_softmax");
  const Shape s3 = around(x.shape(), normalize_axis(dim, x.dim(), "log_softmax"));
  Tensor y(x.shape(), x.dtype());
  dispatch_float(x.dtype(), "log_softmax", [&](auto tag) {
    using T = decltype(tag);
    auto vx = xtv::nd<T>(x.value(), s3);
    auto vy = xtv::nd<T>(y, s3);
    xt::noalias(vy) = vx - xt::amax(vx, kMiddle, kKeep);
    vy -= xt::log(xt::sum(xt::exp(vy), kMiddle, kKeep));
  });
  return record("log_softmax", y, {x}, [y, s3](const Tensor& dy, Grads& g) {
    dispatch_float(dy.dtype(), "log_softmax", [&](auto tag) {
      using T = decltype(tag);
      Tensor dx(y.shape(), y.dtype());
      auto vy = xtv::nd<T>(y, s3);
      auto vdy = xtv::nd<T>(dy, s3);
      auto vdx = xtv::nd<T>(dx, s3);
      xt::noalias(vdx) = vdy - xt::exp(vy) * xt::sum(vdy, kMiddle, kKeep);
      g.add(0, dx);
    });
  });
}

// y = x m / (1 - p) with m ~ Bernoulli(1 - p); dx = dy m / (1 - p)
Variable dropout(const Variable& x, double p, bool training, Generator* gen) {
  detail::check_float(x, "dropout");
  KILN_CHECK(p >= 0 && p <= 1, "dropout: probability must be in [0, 1], got {}", p);
  if (!training || p == 0) return x;
  const Tensor keep = bernoulli(x.shape(), 1 - p, gen);
  Tensor scale(x.shape(), x.dtype());
  dispatch_float(x.dtype(), "dropout", [&](auto tag) {
    using T = decltype(tag);
    auto vs = xtv::flat<T>(scale);
    xt::noalias(vs) = xt::where(xtv::flat<bool>(keep), p < 1 ? T(1.0 / (1.0 - p)) : T(0), T(0));
  });
  Tensor y = math::mul(x.value(), scale);
  return record("dropout", y, {x}, [scale](const Tensor& dy, Grads& g) { g.add(0, math::mul(dy, scale)); });
}

// x_hat = (x - mean) / sqrt(var + eps) over the trailing dims; y = x_hat weight + bias.
// Composite: its gradient comes from the primitives' backward.
Variable layer_norm(const Variable& x, const Shape& normalized_shape, const Variable& weight, const Variable& bias,
                    double eps) {
  detail::check_float(x, "layer_norm");
  const int k = normalized_shape.rank();
  bool ok = k >= 1 && k <= x.dim();
  for (int i = 0; ok && i < k; ++i) ok = x.shape()[x.dim() - k + i] == normalized_shape[i];
  KILN_CHECK(ok, "layer_norm: input of shape {} does not end with normalized_shape {}", x.shape(), normalized_shape);
  KILN_CHECK(!weight.defined() || weight.shape() == normalized_shape,
             "layer_norm: weight of shape {} does not match normalized_shape {}", weight.shape(), normalized_shape);
  KILN_CHECK(!bias.defined() || bias.shape() == normalized_shape,
             "layer_norm: bias of shape {} does not match normalized_shape {}", bias.shape(), normalized_shape);
  Axes axes;
  for (int i = x.dim() - k; i < x.dim(); ++i) axes.push_back(i);
  const Variable centered = x - mean(x, axes, /*keepdim=*/true);
  const Variable variance = mean(centered * centered, axes, /*keepdim=*/true);
  Variable y = centered / sqrt(variance + eps);
  if (weight.defined()) y = y * weight;
  if (bias.defined()) y = y + bias;
  return y;
}

}  // namespace kiln

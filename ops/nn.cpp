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
    const auto total = xt::eval(xt::sum(vy, kMiddle, kKeep));  // [outer, 1, inner], then y in place:
    xt::noalias(vy) /= total;  // a plain `vy /= ...` evaluates through a temporary as large as y
  });
  return record("softmax", y, {x}, [y, s3](const Tensor& dy, Grads& g) {
    dispatch_float(dy.dtype(), "softmax", [&](auto tag) {
      using T = decltype(tag);
      Tensor dx(y.shape(), y.dtype());
      auto vy = xtv::nd<T>(y, s3);
      auto vdy = xtv::nd<T>(dy, s3);
      auto vdx = xtv::nd<T>(dx, s3);
      xt::noalias(vdx) = vy * (vdy - xt::sum(vdy * vy, kMiddle, kKeep));
      g.add(0, std::move(dx));
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
    const auto log_total = xt::eval(xt::log(xt::sum(xt::exp(vy), kMiddle, kKeep)));
    xt::noalias(vy) -= log_total;
  });
  return record("log_softmax", y, {x}, [y, s3](const Tensor& dy, Grads& g) {
    dispatch_float(dy.dtype(), "log_softmax", [&](auto tag) {
      using T = decltype(tag);
      Tensor dx(y.shape(), y.dtype());
      auto vy = xtv::nd<T>(y, s3);
      auto vdy = xtv::nd<T>(dy, s3);
      auto vdx = xtv::nd<T>(dx, s3);
      xt::noalias(vdx) = vdy - xt::exp(vy) * xt::sum(vdy, kMiddle, kKeep);
      g.add(0, std::move(dx));
    });
  });
}

// y = x m / (1 - p) with m ~ Bernoulli(1 - p); dx = dy m / (1 - p)
// Note [Dropout masks]: one 64-bit draw from the generator seeds a counter-based hash (splitmix64) of
// each element's index, so a mask costs one pass with no generator state per element, and the same
// seed still gives the same mask.
// y = x * keep / (1 - p); dx = dy * keep / (1 - p)
Variable dropout(const Variable& x, double p, bool training, Generator* gen) {
  detail::check_float(x, "dropout");
  KILN_CHECK(p >= 0 && p <= 1, "dropout: probability must be in [0, 1], got {}", p);
  if (!training || p == 0) return x;
  const std::uint64_t seed = (gen != nullptr ? *gen : default_generator()).next_u64();
  Tensor scale(x.shape(), x.dtype()), y(x.shape(), x.dtype());
  dispatch_float(x.dtype(), "dropout", [&](auto tag) {
    using T = decltype(tag);
    const T keep_scale = p < 1 ? T(1.0 / (1.0 - p)) : T(0);
    const T* xs = x.value().data<T>();
    T* ss = scale.data<T>();
    T* ys = y.data<T>();
    const std::int64_t n = x.numel();
    for (std::int64_t i = 0; i < n; ++i) {
      std::uint64_t z = seed + static_cast<std::uint64_t>(i + 1) * 0x9E3779B97F4A7C15ull;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      z ^= z >> 31;
      const bool keep = static_cast<double>(z >> 11) * (1.0 / 9007199254740992.0) >= p;
      ss[i] = keep ? keep_scale : T(0);
      ys[i] = xs[i] * ss[i];
    }
  });
  return record("dropout", y, {x}, [scale](const Tensor& dy, Grads& g) { g.add(0, math::mul(dy, scale)); });
}

// x_hat = (x - mean) / sqrt(var + eps) over the trailing dims (rows of n); y = x_hat weight + bias.
// dx = rstd (g - mean(g) - x_hat mean(g x_hat)) with g = dy weight; dweight = sum dy x_hat; dbias = sum dy
Variable layer_norm(const Variable& x, const Shape& normalized_shape, const Variable& weight, const Variable& bias,
                    double eps) {
  detail::check_float(x, "layer_norm");
  KILN_CHECK(std::isfinite(eps) && eps > 0, "layer_norm: eps must be a positive number, got {}", eps);
  const int k = normalized_shape.rank();
  bool ok = k >= 1 && k <= x.dim();
  for (int i = 0; ok && i < k; ++i) ok = x.shape()[x.dim() - k + i] == normalized_shape[i];
  KILN_CHECK(ok, "layer_norm: input of shape {} does not end with normalized_shape {}", x.shape(), normalized_shape);
  KILN_CHECK(!weight.defined() || weight.shape() == normalized_shape,
             "layer_norm: weight of shape {} does not match normalized_shape {}", weight.shape(), normalized_shape);
  KILN_CHECK(!bias.defined() || bias.shape() == normalized_shape,
             "layer_norm: bias of shape {} does not match normalized_shape {}", bias.shape(), normalized_shape);
  KILN_CHECK((!weight.defined() || weight.dtype() == x.dtype()) && (!bias.defined() || bias.dtype() == x.dtype()),
             "layer_norm: weight and bias must have the input's dtype {}", x.dtype());
  const std::int64_t n = normalized_shape.numel(), rows = n == 0 ? 0 : x.numel() / n;
  Tensor y(x.shape(), x.dtype()), xhat(x.shape(), x.dtype()), rstd({rows}, x.dtype());
  const Tensor w = weight.defined() ? weight.value() : Tensor(), b = bias.defined() ? bias.value() : Tensor();
  dispatch_float(x.dtype(), "layer_norm", [&](auto tag) {
    using T = decltype(tag);
    const T* xs = x.value().data<T>();
    const T* ws = w.defined() ? w.data<T>() : nullptr;
    const T* bs = b.defined() ? b.data<T>() : nullptr;
    T *ys = y.data<T>(), *hs = xhat.data<T>(), *rs = rstd.data<T>();
    for (std::int64_t r = 0; r < rows; ++r) {
      const T* xr = xs + r * n;
      T mu = 0;
      for (std::int64_t i = 0; i < n; ++i) mu += xr[i];
      mu /= T(n);
      T var = 0;
      for (std::int64_t i = 0; i < n; ++i) var += (xr[i] - mu) * (xr[i] - mu);
      const T inv = T(1) / std::sqrt(var / T(n) + T(eps));
      rs[r] = inv;
      T* hr = hs + r * n;
      T* yr = ys + r * n;
      for (std::int64_t i = 0; i < n; ++i) {
        hr[i] = (xr[i] - mu) * inv;
        yr[i] = hr[i] * (ws ? ws[i] : T(1)) + (bs ? bs[i] : T(0));
      }
    }
  });
  std::vector<Variable> inputs{x};
  if (weight.defined()) inputs.push_back(weight);
  if (bias.defined()) inputs.push_back(bias);
  const bool has_w = weight.defined(), has_b = bias.defined();
  const std::vector<std::int64_t> norm_dims = normalized_shape.vec();
  Variable out = record("layer_norm", y, inputs, [xhat, rstd, w, n, rows, has_w, has_b, norm_dims](const Tensor& dy, Grads& g) {
    dispatch_float(dy.dtype(), "layer_norm", [&](auto tag) {
      using T = decltype(tag);
      const T* dys = dy.data<T>();
      const T* hs = xhat.data<T>();
      const T* rs = rstd.data<T>();
      const T* ws = has_w ? w.data<T>() : nullptr;
      if (g.needs(0)) {
        Tensor dx(dy.shape(), dy.dtype());
        T* dxs = dx.data<T>();
        for (std::int64_t r = 0; r < rows; ++r) {
          const T *dyr = dys + r * n, *hr = hs + r * n;
          T mean_g = 0, mean_gh = 0;
          for (std::int64_t i = 0; i < n; ++i) {
            const T gi = dyr[i] * (ws ? ws[i] : T(1));
            mean_g += gi;
            mean_gh += gi * hr[i];
          }
          mean_g /= T(n), mean_gh /= T(n);
          T* dxr = dxs + r * n;
          for (std::int64_t i = 0; i < n; ++i)
            dxr[i] = rs[r] * (dyr[i] * (ws ? ws[i] : T(1)) - mean_g - hr[i] * mean_gh);
        }
        g.add(0, std::move(dx));
      }
      const std::size_t wi = 1, bi = has_w ? 2 : 1;
      const bool need_w = has_w && g.needs(wi), need_b = has_b && g.needs(bi);
      if (!need_w && !need_b) return;
      Tensor dw(Shape{n}, dy.dtype()), db(Shape{n}, dy.dtype());
      dw.fill_(0), db.fill_(0);
      T *dws = dw.data<T>(), *dbs = db.data<T>();
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t i = 0; i < n; ++i) {
          dws[i] += dys[r * n + i] * hs[r * n + i];
          dbs[i] += dys[r * n + i];
        }
      if (need_w) g.add(wi, dw.reshape(norm_dims));
      if (need_b) g.add(bi, db.reshape(norm_dims));
    });
  });
  note_attrs(out, {eps, has_w ? 1.0 : 0.0, has_b ? 1.0 : 0.0});  // for compiled cells (fusion/cell_program.cpp)
  return out;
}

}  // namespace kiln

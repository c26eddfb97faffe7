#include "tensor/math.hpp"

#include <cmath>

#include <xtensor/xmanipulation.hpp>
#include <xtensor/xreducer.hpp>

#include "tensor/dispatch.hpp"
#include "tensor/runs.hpp"
#include "tensor/xt.hpp"

namespace kiln::math {

namespace {
void check_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  KILN_CHECK(a.defined() && b.defined(), "{}: undefined tensor", op);
  KILN_CHECK(a.dtype() == b.dtype(), "{}: dtypes differ ({} {} vs {} {})", op, a.dtype(), a.shape(),
             b.dtype(), b.shape());
}
}  // namespace

#define KILN_MATH_BINARY(name, expr)                                                  \
  Tensor name(const Tensor& a, const Tensor& b) {                                     \
    check_same_dtype(a, b, #name);                                                    \
    return dispatch_float(a.dtype(), #name, [&](auto tag) {                           \
      using T = decltype(tag);                                                        \
      return xtv::map2<T>(a, b, #name, [](auto& x, auto& y) { return expr; });        \
    });                                                                               \
  }
KILN_MATH_BINARY(add, x + y)
KILN_MATH_BINARY(sub, x - y)
KILN_MATH_BINARY(mul, x * y)
KILN_MATH_BINARY(div, x / y)
#undef KILN_MATH_BINARY

Tensor neg(const Tensor& a) { return scale(a, -1.0); }

Tensor scale(const Tensor& a, double s) {
  return dispatch_float(a.dtype(), "scale", [&](auto tag) {
    using T = decltype(tag);
    return xtv::map1<T>(a, [s](auto& x) { return x * static_cast<T>(s); });
  });
}

void add_(Tensor& a, const Tensor& b) { axpy_(a, 1.0, b); }

void axpy_(Tensor& a, double s, const Tensor& b) {
  check_same_dtype(a, b, "add_");
  KILN_CHECK(a.shape() == b.shape(), "add_: shapes {} and {} differ", a.shape(), b.shape());
  // Note [In place without a temporary]: xtensor's `a += e` on a container or adaptor first evaluates
  // a + e into a temporary of a's size (it cannot know that e does not overlap a), so every gradient
  // accumulation allocated, and here page-faulted, a fresh buffer as large as the gradient (LSTM (c):
  // 16 MiB of new pages per training step in dW_hh alone). noalias writes into a directly, which is
  // right when b is a itself or lies apart from it; a b overlapping a at another offset is copied first.
  const char* pa = static_cast<const char*>(a.raw_data());
  const char* pb = static_cast<const char*>(b.raw_data());
  const bool overlaps = pa != pb && pb < pa + a.nbytes() && pa < pb + b.nbytes();
  const Tensor apart = overlaps ? b.clone() : b;
  dispatch_float(a.dtype(), "add_", [&](auto tag) {
    using T = decltype(tag);
    auto va = xtv::flat<T>(a);
    auto vb = xtv::flat<T>(apart);
    if (s == 1.0)
      xt::noalias(va) += vb;
    else
      xt::noalias(va) += static_cast<T>(s) * vb;
  });
}

void add_slice_(Tensor& t, const Tensor& g, int dim, std::int64_t start, std::int64_t step) {
  check_same_dtype(t, g, "add_slice_");
  bool ok = t.dim() == g.dim() && dim >= 0 && dim < t.dim() && step > 0 && start >= 0;
  for (int k = 0; ok && k < t.dim(); ++k) ok = k == dim || t.shape()[k] == g.shape()[k];
  ok = ok && (g.shape()[dim] == 0 || start + (g.shape()[dim] - 1) * step < t.shape()[dim]);
  KILN_CHECK(ok, "add_slice_: a gradient of shape {} does not fit dimension {} of {} at start {} step {}", g.shape(),
             dim, t.shape(), start, step);
  std::int64_t outer = 1, inner = 1;
  for (int k = 0; k < dim; ++k) outer *= t.shape()[k];
  for (int k = dim + 1; k < t.dim(); ++k) inner *= t.shape()[k];
  const std::int64_t n = t.shape()[dim], count = g.shape()[dim];
  dispatch_float(t.dtype(), "add_slice_", [&](auto tag) {
    using T = decltype(tag);
    T* dst = t.data<T>();
    const T* src = g.data<T>();
    // d[0, len) += s[0, len), vectorised (xsimd through xtensor).
    auto add_block = [](T* d, const T* s, std::int64_t len) {
      const auto m = static_cast<std::size_t>(len);
      auto vd = xt::adapt(d, m, xt::no_ownership(), std::array<std::size_t, 1>{m});
      xt::noalias(vd) += xt::adapt(s, m, xt::no_ownership(), std::array<std::size_t, 1>{m});  // Note [In place without a temporary]
    };
    for (std::int64_t o = 0; o < outer; ++o) {
      if (step == 1) {  // the slice is one block per outer index
        add_block(dst + (o * n + start) * inner, src + o * count * inner, count * inner);
        continue;
      }
      for (std::int64_t k = 0; k < count; ++k)
        add_block(dst + (o * n + start + k * step) * inner, src + (o * count + k) * inner, inner);
    }
  });
}

Tensor sum_to(const Tensor& t, const Shape& shape) {
  if (t.shape() == shape) return t;
  const int lead = t.dim() - shape.rank();
  KILN_CHECK(lead >= 0, "sum_to: cannot sum {} down to {}", t.shape(), shape);
  std::vector<std::size_t> axes;
  for (int i = 0; i < t.dim(); ++i) {
    const bool leading = i < lead;
    if (leading || (shape[i - lead] == 1 && t.shape()[i] != 1)) {
      axes.push_back(static_cast<std::size_t>(i));
      continue;
    }
    KILN_CHECK(shape[i - lead] == t.shape()[i], "sum_to: cannot sum {} down to {}", t.shape(), shape);
  }
  std::vector<bool> reduce(static_cast<std::size_t>(t.dim()), false);
  for (auto ax : axes) reduce[ax] = true;
  return sum_dims(t, reduce).reshape(shape.vec());
}

Tensor expand(const Tensor& t, const Shape& shape) {
  if (t.shape() == shape) return t;
  KILN_CHECK(broadcast_shapes(t.shape(), shape, "expand") == shape, "expand: cannot expand {} to {}",
             t.shape(), shape);
  Tensor out(shape, t.dtype());
  if (out.numel() == 0) return out;
  // Source strides in elements (0 along broadcast dims), with neighbouring dims merged where one
  // stride runs through both, so the innermost loop is one long copy or fill.
  const int r = shape.rank(), lead = r - t.dim();
  std::vector<std::int64_t> size, stride;
  std::int64_t step = 1;
  std::vector<std::int64_t> src(static_cast<std::size_t>(r), 0);
  for (int i = r - 1; i >= lead; --i) {
    const std::int64_t n = t.shape()[i - lead];
    src[static_cast<std::size_t>(i)] = n == 1 ? 0 : step;
    step *= n;
  }
  for (int i = 0; i < r; ++i) {
    if (shape[i] == 1) continue;
    const std::int64_t st = src[static_cast<std::size_t>(i)];
    if (!size.empty() && stride.back() == st * shape[i]) {
      size.back() *= shape[i];
      stride.back() = st;
    } else {
      size.push_back(shape[i]);
      stride.push_back(st);
    }
  }
  if (size.empty()) size = {1}, stride = {0};
  dispatch_all(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* in = t.data<T>();
    T* o = out.data<T>();
    const std::int64_t n = size.back();
    const bool broadcast = stride.back() == 0;
    runs::for_each_run(size, stride, [&](std::int64_t from) {
      if (broadcast)
        std::fill_n(o, n, in[from]);
      else
        std::copy_n(in + from, n, o);  // stride 1: merged dims are contiguous in the source
      o += n;
    });
  });
  return out;
}

Tensor permute(const Tensor& t, const std::vector<int>& perm) {
  KILN_CHECK(static_cast<int>(perm.size()) == t.dim(), "permute: {} axes given for a tensor of shape {}",
             perm.size(), t.shape());
  Shape shape;
  for (int p : perm) shape.push_back(t.shape()[p]);
  Tensor out(shape, t.dtype());
  dispatch_all(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    auto dst = xtv::nd<T>(out);
    std::vector<std::size_t> p(perm.begin(), perm.end());
    xt::noalias(dst) = xt::transpose(xtv::nd<T>(t), p);
  });
  return out;
}

bool all_finite(const Tensor& t) {
  if (!is_floating(t.dtype())) return true;
  return dispatch_float(t.dtype(), "all_finite", [&](auto tag) {
    using T = decltype(tag);
    const T* p = t.data<T>();
    T acc = 0;
    for (std::int64_t i = 0; i < t.numel(); ++i) acc += p[i] * 0;  // NaN/Inf * 0 = NaN
    return !std::isnan(acc);
  });
}

double sum_all(const Tensor& t) {
  return dispatch_all(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = t.data<T>();
    double s = 0;
    for (std::int64_t i = 0; i < t.numel(); ++i) s += static_cast<double>(p[i]);
    return s;
  });
}

}  // namespace kiln::math

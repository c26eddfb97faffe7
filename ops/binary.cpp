// Elementwise binary ops with NumPy broadcasting, their scalar variants, and the operators.
// Gradients are computed over the broadcast shape, then summed back to each input's shape.

#include <cmath>

#include "autograd/tape.hpp"
#include "ops/elementwise.hpp"
#include "ops/ops.hpp"

namespace kiln {

using detail::eval_over;
using detail::value_t;

namespace detail {

void check_float(const Variable& x, const char* op) {
  KILN_CHECK(x.defined(), "{}: input is undefined", op);
  KILN_CHECK(is_floating(x.dtype()), "{}: expected a float32 or float64 tensor, got {} {}", op, x.dtype(),
             x.shape());
}

void check_same_dtype(const Variable& a, const Variable& b, const char* op) {
  check_float(a, op);
  check_float(b, op);
  KILN_CHECK(a.dtype() == b.dtype(), "{}: dtypes differ: {} {} and {} {}", op, a.dtype(), a.shape(),
             b.dtype(), b.shape());
}

}  // namespace detail

namespace {

enum Uses { kUsesA = 1, kUsesB = 2, kUsesY = 4 };

/// y = fwd(a, b); da = sum_to(bwd_a(dy, a, b, y)), db = sum_to(bwd_b(dy, a, b, y)).
template <int kUses, class Fwd, class BwdA, class BwdB>
Variable binary_op(const char* op, const Variable& a, const Variable& b, Fwd fwd, BwdA bwd_a, BwdB bwd_b) {
  detail::check_same_dtype(a, b, op);
  const Tensor& av = a.value();
  const Tensor& bv = b.value();
  Tensor y = dispatch_float(av.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    return xtv::map2<T>(av, bv, op, fwd);
  });
  Tensor as = (kUses & kUsesA) ? av : Tensor();
  Tensor bs = (kUses & kUsesB) ? bv : Tensor();
  Tensor ys = (kUses & kUsesY) ? y : Tensor();
  const Shape a_shape = av.shape(), b_shape = bv.shape();
  return record(op, y, {a, b}, [=](const Tensor& dy, Grads& g) {
    dispatch_float(dy.dtype(), op, [&](auto tag) {
      using T = decltype(tag);
      if (g.needs(0)) g.add(0, math::sum_to(eval_over<T>(dy, as, bs, ys, bwd_a), a_shape));
      if (g.needs(1)) g.add(1, math::sum_to(eval_over<T>(dy, as, bs, ys, bwd_b), b_shape));
    });
  });
}

Tensor scalar_like(const Variable& x, double s) { return scalar_tensor(s, x.dtype()); }

}  // namespace

// y = a + b; da = dy, db = dy
Variable add(const Variable& a, const Variable& b) {
  detail::check_same_dtype(a, b, "add");
  Tensor y = dispatch_float(a.dtype(), "add", [&](auto tag) {
    return xtv::map2<decltype(tag)>(a.value(), b.value(), "add", [](auto& x, auto& z) { return x + z; });
  });
  const Shape as = a.shape(), bs = b.shape();
  return record("add", y, {a, b}, [as, bs](const Tensor& dy, Grads& g) {
    if (g.needs(0)) g.add(0, math::sum_to(dy, as));
    if (g.needs(1)) g.add(1, math::sum_to(dy, bs));
  });
}

// y = a - b; da = dy, db = -dy
Variable sub(const Variable& a, const Variable& b) {
  detail::check_same_dtype(a, b, "sub");
  Tensor y = dispatch_float(a.dtype(), "sub", [&](auto tag) {
    return xtv::map2<decltype(tag)>(a.value(), b.value(), "sub", [](auto& x, auto& z) { return x - z; });
  });
  const Shape as = a.shape(), bs = b.shape();
  return record("sub", y, {a, b}, [as, bs](const Tensor& dy, Grads& g) {
    if (g.needs(0)) g.add(0, math::sum_to(dy, as));
    if (g.needs(1)) g.add(1, math::neg(math::sum_to(dy, bs)));
  });
}

// y = a * b; da = dy b, db = dy a
Variable mul(const Variable& a, const Variable& b) {
  return binary_op<kUsesA | kUsesB>(
      "mul", a, b, [](auto& x, auto& z) { return x * z; },
      [](auto& dy, auto&, auto& z, auto&) { return dy * z; },
      [](auto& dy, auto& x, auto&, auto&) { return dy * x; });
}

// y = a / b; da = dy / b, db = -dy y / b
Variable div(const Variable& a, const Variable& b) {
  return binary_op<kUsesB | kUsesY>(
      "div", a, b, [](auto& x, auto& z) { return x / z; },
      [](auto& dy, auto&, auto& z, auto&) { return dy / z; },
      [](auto& dy, auto&, auto& z, auto& y) { return -dy * y / z; });
}

// y = a^b; da = dy b a^(b-1), db = dy y ln a
Variable pow(const Variable& a, const Variable& b) {
  return binary_op<kUsesA | kUsesB | kUsesY>(
      "pow", a, b, [](auto& x, auto& z) { return xt::pow(x, z); },
      [](auto& dy, auto& x, auto& z, auto&) { return dy * z * xt::pow(x, z - value_t<decltype(z)>(1)); },
      [](auto& dy, auto& x, auto&, auto& y) { return dy * y * xt::log(x); });
}

// y = max(a, b); ties send dy to a
Variable maximum(const Variable& a, const Variable& b) {
  return binary_op<kUsesA | kUsesB>(
      "maximum", a, b, [](auto& x, auto& z) { return xt::maximum(x, z); },
      [](auto& dy, auto& x, auto& z, auto&) { return xt::where(x >= z, dy, value_t<decltype(x)>(0)); },
      [](auto& dy, auto& x, auto& z, auto&) { return xt::where(x >= z, value_t<decltype(x)>(0), dy); });
}

// y = min(a, b); ties send dy to a
Variable minimum(const Variable& a, const Variable& b) {
  return binary_op<kUsesA | kUsesB>(
      "minimum", a, b, [](auto& x, auto& z) { return xt::minimum(x, z); },
      [](auto& dy, auto& x, auto& z, auto&) { return xt::where(x <= z, dy, value_t<decltype(x)>(0)); },
      [](auto& dy, auto& x, auto& z, auto&) { return xt::where(x <= z, value_t<decltype(x)>(0), dy); });
}

namespace {
// Note [Broadcast bool masks]: xtensor with xsimd evaluates xt::where over a bool array broadcast to a
// larger shape with the wrong elements (a [5, 5] mask over [2, 2, 5, 5] scores picked rows shifted);
// the same-shape case is right, so masks are expanded to the full shape before xt::where.
void check_mask(const Variable& mask, const char* op) {
  KILN_CHECK(mask.defined() && mask.dtype() == kBool, "{}: the mask must be a bool tensor, got {} {}", op,
             mask.defined() ? dtype_name(mask.dtype()) : "undefined", mask.defined() ? mask.shape() : Shape{});
}
}  // namespace

// y = mask ? a : b; da = mask ? dy : 0, db = mask ? 0 : dy
Variable where(const Variable& mask, const Variable& a, const Variable& b) {
  check_mask(mask, "where");
  detail::check_same_dtype(a, b, "where");
  const Shape shape = broadcast_shapes(broadcast_shapes(mask.shape(), a.shape(), "where"), b.shape(), "where");
  const Tensor m = math::expand(mask.value(), shape);  // Note [Broadcast bool masks]
  Tensor y(shape, a.dtype());
  dispatch_float(a.dtype(), "where", [&](auto tag) {
    using T = decltype(tag);
    auto vy = xtv::nd<T>(y);
    xt::noalias(vy) = xt::where(xtv::nd<bool>(m), xtv::nd<T>(a.value()), xtv::nd<T>(b.value()));
  });
  const Shape as = a.shape(), bs = b.shape();
  return record("where", y, {mask, a, b}, [m, as, bs](const Tensor& dy, Grads& g) {
    dispatch_float(dy.dtype(), "where", [&](auto tag) {
      using T = decltype(tag);
      for (std::size_t i = 1; i <= 2; ++i) {
        if (!g.needs(i)) continue;
        Tensor d(dy.shape(), dy.dtype());
        auto vd = xtv::nd<T>(d);
        auto vm = xtv::nd<bool>(m);
        auto vdy = xtv::nd<T>(dy);
        if (i == 1)
          xt::noalias(vd) = xt::where(vm, vdy, T(0));
        else
          xt::noalias(vd) = xt::where(vm, T(0), vdy);
        g.add(i, math::sum_to(d, i == 1 ? as : bs));
      }
    });
  });
}

// y = mask ? value : a; da = mask ? 0 : dy (mask broadcasts to a's shape)
Variable masked_fill(const Variable& a, const Variable& mask, double value) {
  check_mask(mask, "masked_fill");
  detail::check_float(a, "masked_fill");
  KILN_CHECK(broadcast_shapes(a.shape(), mask.shape(), "masked_fill") == a.shape(),
             "masked_fill: mask of shape {} does not broadcast to the input's shape {}", mask.shape(), a.shape());
  const Tensor m = math::expand(mask.value(), a.shape());  // Note [Broadcast bool masks]
  Tensor y(a.shape(), a.dtype());
  dispatch_float(a.dtype(), "masked_fill", [&](auto tag) {
    using T = decltype(tag);
    auto vy = xtv::nd<T>(y);
    xt::noalias(vy) = xt::where(xtv::nd<bool>(m), T(value), xtv::nd<T>(a.value()));
  });
  return record("masked_fill", y, {a, mask}, [m](const Tensor& dy, Grads& g) {
    dispatch_float(dy.dtype(), "masked_fill", [&](auto tag) {
      using T = decltype(tag);
      Tensor d(dy.shape(), dy.dtype());
      auto vd = xtv::nd<T>(d);
      xt::noalias(vd) = xt::where(xtv::nd<bool>(m), T(0), xtv::nd<T>(dy));
      g.add(0, d);
    });
  });
}

// Scalar variants: the scalar becomes a 0-d constant, so they share the tensor ops' backward.
Variable add(const Variable& a, double s) { return add(a, Variable(scalar_like(a, s))); }
Variable sub(double s, const Variable& a) { return sub(Variable(scalar_like(a, s)), a); }
Variable mul(const Variable& a, double s) { return mul(a, Variable(scalar_like(a, s))); }
Variable div(double s, const Variable& a) { return div(Variable(scalar_like(a, s)), a); }

// y = a^p; da = dy p a^(p-1)
Variable pow(const Variable& a, double p) {
  Variable y = detail::unary_op<detail::kSaveInput>(
      "pow", a, [p](auto& x) { return xt::pow(x, value_t<decltype(x)>(p)); },
      [p](auto& dy, auto& x, auto&) {
        using T = value_t<decltype(x)>;
        return dy * T(p) * xt::pow(x, T(p - 1));
      });
  note_attrs(y, {p});
  return y;
}

Variable operator+(const Variable& a, const Variable& b) { return add(a, b); }
Variable operator-(const Variable& a, const Variable& b) { return sub(a, b); }
Variable operator*(const Variable& a, const Variable& b) { return mul(a, b); }
Variable operator/(const Variable& a, const Variable& b) { return div(a, b); }
Variable operator-(const Variable& a) { return neg(a); }
Variable operator+(const Variable& a, double s) { return add(a, s); }
Variable operator+(double s, const Variable& a) { return add(a, s); }
Variable operator-(const Variable& a, double s) { return add(a, -s); }
Variable operator-(double s, const Variable& a) { return sub(s, a); }
Variable operator*(const Variable& a, double s) { return mul(a, s); }
Variable operator*(double s, const Variable& a) { return mul(a, s); }
Variable operator/(const Variable& a, double s) { return mul(a, 1.0 / s); }
Variable operator/(double s, const Variable& a) { return div(s, a); }

}  // namespace kiln

// Elementwise unary ops. Each forward runs on flat, xsimd-vectorised views; each backward sits right
// under its forward and reads only what it saved.

#include <cmath>

#include "autograd/tape.hpp"
#include "ops/activation_probe.hpp"
#include "ops/elementwise.hpp"
#include "ops/ops.hpp"

namespace kiln {

using detail::kSaveInput;
using detail::kSaveOutput;
using detail::unary_op;
using detail::value_t;

// y = -x; dx = -dy
Variable neg(const Variable& x) {
  return unary_op<0>("neg", x, [](auto& v) { return -v; }, [](auto& dy, auto&, auto&) { return -dy; });
}

// y = e^x; dx = dy y
Variable exp(const Variable& x) {
  return unary_op<kSaveOutput>("exp", x, [](auto& v) { return xt::exp(v); },
                               [](auto& dy, auto&, auto& y) { return dy * y; });
}

// y = ln x; dx = dy / x
Variable log(const Variable& x) {
  return unary_op<kSaveInput>("log", x, [](auto& v) { return xt::log(v); },
                              [](auto& dy, auto& v, auto&) { return dy / v; });
}

// y = sqrt x; dx = dy / (2 y)
Variable sqrt(const Variable& x) {
  return unary_op<kSaveOutput>("sqrt", x, [](auto& v) { return xt::sqrt(v); },
                               [](auto& dy, auto&, auto& y) { return dy / (value_t<decltype(y)>(2) * y); });
}

// y = |x|; dx = dy sign(x)
Variable abs(const Variable& x) {
  return unary_op<kSaveInput>("abs", x, [](auto& v) { return xt::abs(v); },
                              [](auto& dy, auto& v, auto&) { return dy * xt::sign(v); });
}

// y = tanh x; dx = dy (1 - y^2)
Variable tanh(const Variable& x) {
  Variable y = unary_op<kSaveOutput>("tanh", x, [](auto& v) { return xt::tanh(v); },
                                     [](auto& dy, auto&, auto& y) { return dy * (value_t<decltype(y)>(1) - y * y); });
  ActivationProbe::report("tanh", y.value());  // Note [Activation probe]
  return y;
}

// y = 1 / (1 + e^-x); dx = dy y (1 - y)
Variable sigmoid(const Variable& x) {
  Variable y = unary_op<kSaveOutput>(
      "sigmoid", x,
      [](auto& v) {
        using T = value_t<decltype(v)>;
        return T(1) / (T(1) + xt::exp(-v));
      },
      [](auto& dy, auto&, auto& y) { return dy * y * (value_t<decltype(y)>(1) - y); });
  ActivationProbe::report("sigmoid", y.value());  // Note [Activation probe]
  return y;
}

// y = max(x, 0); dx = dy [x > 0]
Variable relu(const Variable& x) {
  return unary_op<kSaveOutput>(
      "relu", x, [](auto& v) { return xt::maximum(v, value_t<decltype(v)>(0)); },
      [](auto& dy, auto&, auto& y) {
        using T = value_t<decltype(y)>;
        return xt::where(y > T(0), dy, T(0));
      });
}

// y = x Phi(x) with Phi(x) = (1 + erf(x / sqrt 2)) / 2; dx = dy (Phi(x) + x phi(x))
Variable gelu(const Variable& x) {
  return unary_op<kSaveInput>(
      "gelu", x,
      [](auto& v) {
        using T = value_t<decltype(v)>;
        return T(0.5) * v * (T(1) + xt::erf(v * T(M_SQRT1_2)));
      },
      [](auto& dy, auto& v, auto&) {
        using T = value_t<decltype(v)>;
        // Scalars enter lazy expressions as temporaries: a named local would be captured by
        // reference and dangle once the lambda returns.
        return dy * (T(0.5) * (T(1) + xt::erf(v * T(M_SQRT1_2))) +
                     v * T(0.5 * M_2_SQRTPI * M_SQRT1_2) * xt::exp(T(-0.5) * v * v));
      });
}

// y = min(max(x, lo), hi); dx = dy [lo <= x <= hi]
Variable clamp(const Variable& x, double lo, double hi) {
  KILN_CHECK(!(lo > hi), "clamp: lower bound {} is greater than upper bound {}", lo, hi);
  Variable y = unary_op<kSaveInput>(
      "clamp", x,
      [lo, hi](auto& v) {
        using T = value_t<decltype(v)>;
        return xt::minimum(xt::maximum(v, T(lo)), T(hi));
      },
      [lo, hi](auto& dy, auto& v, auto&) {
        using T = value_t<decltype(v)>;
        return xt::where(v >= T(lo) && v <= T(hi), dy, T(0));
      });
  note_attrs(y, {lo, hi});
  return y;
}

}  // namespace kiln

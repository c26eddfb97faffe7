#pragma once
// Internal: the machinery shared by elementwise ops (ops/unary.cpp, ops/binary.cpp). Includes xtensor;
// include only from .cpp files.

#include <type_traits>

#include "autograd/tape.hpp"
#include "tensor/dispatch.hpp"
#include "tensor/math.hpp"
#include "tensor/xt.hpp"

namespace kiln::detail {

template <class E>
using value_t = typename std::decay_t<E>::value_type;

void check_float(const Variable& x, const char* op);
void check_same_dtype(const Variable& a, const Variable& b, const char* op);

// Which tensors a unary op's backward reads (Note: capture only what backward reads).
enum Saved { kSaveInput = 1, kSaveOutput = 2 };

/// y = fwd(x) elementwise; backward adds bwd(dy, x, y) (views; unsaved ones alias dy).
template <int kSaved, class Fwd, class Bwd>
Variable unary_op(const char* op, const Variable& x, Fwd fwd, Bwd bwd) {
  check_float(x, op);
  const Tensor& xv = x.value();
  Tensor y = dispatch_float(xv.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    return xtv::map1<T>(xv, fwd);
  });
  Tensor xs = (kSaved & kSaveInput) ? xv : Tensor();
  Tensor ys = (kSaved & kSaveOutput) ? y : Tensor();
  return record(op, y, {x}, [xs, ys, bwd, op](const Tensor& dy, Grads& g) {
    g.add(0, dispatch_float(dy.dtype(), op, [&](auto tag) {
      using T = decltype(tag);
      Tensor dx(dy.shape(), dy.dtype());
      auto vdy = xtv::flat<T>(dy);
      auto vx = xtv::flat<T>(xs.defined() ? xs : dy);
      auto vy = xtv::flat<T>(ys.defined() ? ys : dy);
      auto vdx = xtv::flat<T>(dx);
      xt::noalias(vdx) = bwd(vdy, vx, vy);
      return dx;
    }));
  });
}

/// Evaluates f(dy, a, b, y) over dy's shape (a, b, y broadcast to it; undefined ones alias dy).
template <class T, class F>
Tensor eval_over(const Tensor& dy, const Tensor& a, const Tensor& b, const Tensor& y, F&& f) {
  const Tensor& ta = a.defined() ? a : dy;
  const Tensor& tb = b.defined() ? b : dy;
  const Tensor& ty = y.defined() ? y : dy;
  Tensor out(dy.shape(), dy.dtype());
  if (ta.shape() == dy.shape() && tb.shape() == dy.shape()) {
    auto vdy = xtv::flat<T>(dy);
    auto va = xtv::flat<T>(ta);
    auto vb = xtv::flat<T>(tb);
    auto vy = xtv::flat<T>(ty);
    auto vo = xtv::flat<T>(out);
    xt::noalias(vo) = f(vdy, va, vb, vy);
  } else {
    auto vdy = xtv::nd<T>(dy);
    auto va = xtv::nd<T>(ta);
    auto vb = xtv::nd<T>(tb);
    auto vy = xtv::nd<T>(ty);
    auto vo = xtv::nd<T>(out);
    xt::noalias(vo) = f(vdy, va, vb, vy);
  }
  return out;
}

}  // namespace kiln::detail

#pragma once
// Internal: xtensor views over a Tensor's buffer. Include only from .cpp files (xtensor is heavy).
//
// Note [noalias]: kernels assign into freshly allocated outputs, which never alias their inputs, so
// they assign through xt::noalias. Without it xtensor evaluates into a temporary and copies, which
// cost a third of the bandwidth of tanh on 1M floats.

#include <array>
#include <cstddef>
#include <vector>

#include <xtensor/xadapt.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>
#include <xtensor/xview.hpp>

#include "tensor/tensor.hpp"

namespace kiln::xtv {

inline std::vector<std::size_t> dims(const Shape& s) { return {s.begin(), s.end()}; }

/// N-d view with the tensor's shape (broadcasting-capable).
template <class T>
auto nd(Tensor& t) {
  return xt::adapt(t.data<T>(), static_cast<std::size_t>(t.numel()), xt::no_ownership(), dims(t.shape()));
}
template <class T>
auto nd(const Tensor& t) {
  return xt::adapt(t.data<T>(), static_cast<std::size_t>(t.numel()), xt::no_ownership(), dims(t.shape()));
}

/// N-d view with another shape of the same size (e.g. a reduced shape with kept dims).
template <class T>
auto nd(Tensor& t, const Shape& shape) {
  return xt::adapt(t.data<T>(), static_cast<std::size_t>(t.numel()), xt::no_ownership(), dims(shape));
}
template <class T>
auto nd(const Tensor& t, const Shape& shape) {
  return xt::adapt(t.data<T>(), static_cast<std::size_t>(t.numel()), xt::no_ownership(), dims(shape));
}

/// 1-d view of every element: the fast, vectorised path for same-shape elementwise work.
template <class T>
auto flat(Tensor& t) {
  const auto n = static_cast<std::size_t>(t.numel());
  return xt::adapt(t.data<T>(), n, xt::no_ownership(), std::array<std::size_t, 1>{n});
}
template <class T>
auto flat(const Tensor& t) {
  const auto n = static_cast<std::size_t>(t.numel());
  return xt::adapt(t.data<T>(), n, xt::no_ownership(), std::array<std::size_t, 1>{n});
}

}  // namespace kiln::xtv

namespace kiln::xtv {

/// out = f(a, b) with NumPy broadcasting; the same-shape case runs on flat, vectorised views.
template <class T, class F>
Tensor map2(const Tensor& a, const Tensor& b, const char* op, F&& f) {
  if (a.shape() == b.shape()) {
    Tensor out(a.shape(), dtype_of<T>());
    auto va = flat<T>(a);
    auto vb = flat<T>(b);
    auto vo = flat<T>(out);
    xt::noalias(vo) = f(va, vb);
    return out;
  }
  Tensor out(broadcast_shapes(a.shape(), b.shape(), op), dtype_of<T>());
  auto va = nd<T>(a);
  auto vb = nd<T>(b);
  auto vo = nd<T>(out);
  xt::noalias(vo) = f(va, vb);
  return out;
}

/// out = f(a) elementwise on flat views.
template <class T, class F>
Tensor map1(const Tensor& a, F&& f) {
  Tensor out(a.shape(), dtype_of<T>());
  auto va = flat<T>(a);
  auto vo = flat<T>(out);
  xt::noalias(vo) = f(va);
  return out;
}

}  // namespace kiln::xtv

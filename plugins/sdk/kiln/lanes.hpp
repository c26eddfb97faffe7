#pragma once
// The plugin SDK's pointwise helper: one body for a row pass, written once with generic arithmetic,
// run on xsimd batches (when xsimd is installed; header-only) and then on the scalar tail. A cell's
// forward and backward (kiln/recurrent_kernel.hpp) use it to vectorise their math; Kiln's built-in
// kernels are written with it.
//
//   lanes<T>(H, [&](auto v, std::int64_t j) {
//     using V = decltype(v);                       // xsimd::batch<T>, then T
//     put(out + j, sigmoid(load<V>(in + j)));
//   });
//
// The batches' width is the one the plugin is compiled for (kiln_add_plugin builds with -march=native
// unless told otherwise).

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "kiln/detail/has_xsimd.hpp"

namespace kiln::sdk::simd {

template <class T, class F>
inline void lanes(std::int64_t n, F&& body) {
  std::int64_t j = 0;
#if KILN_SDK_HAS_XSIMD
  using B = xsimd::batch<T>;
  constexpr std::int64_t W = static_cast<std::int64_t>(B::size);
  for (; j + W <= n; j += W) body(B(T(0)), j);
#endif
  for (; j < n; ++j) body(T(0), j);
}

/// The sum over j in [0, n) of term(v, j): batches first, then the scalar tail, always in this order, so
/// the result does not depend on threads.
template <class T, class F>
inline T sum_lanes(std::int64_t n, F&& term) {
  std::int64_t j = 0;
  T s(0);
#if KILN_SDK_HAS_XSIMD
  using B = xsimd::batch<T>;
  constexpr std::int64_t W = static_cast<std::int64_t>(B::size);
  B acc(T(0));
  for (; j + W <= n; j += W) acc += term(B(T(0)), j);
  s = xsimd::hadd(acc);
#endif
  for (; j < n; ++j) s += term(T(0), j);
  return s;
}

template <class V, class T>
inline V load(const T* p) {
  if constexpr (std::is_same_v<V, T>)
    return *p;
  else
    return V::load_unaligned(p);
}

template <class T>
inline void put(T* p, T v) { *p = v; }
#if KILN_SDK_HAS_XSIMD
template <class T, class A>
inline void put(T* p, const xsimd::batch<T, A>& v) { v.store_unaligned(p); }
#endif

template <class T>
inline T sigmoid(T v) { return T(1) / (T(1) + std::exp(-v)); }
#if KILN_SDK_HAS_XSIMD
template <class T, class A>
inline xsimd::batch<T, A> sigmoid(const xsimd::batch<T, A>& v) { return T(1) / (T(1) + xsimd::exp(-v)); }
#endif

template <class T>
inline T exp_of(T v) { return std::exp(v); }
#if KILN_SDK_HAS_XSIMD
template <class T, class A>
inline xsimd::batch<T, A> exp_of(const xsimd::batch<T, A>& v) { return xsimd::exp(v); }
#endif

template <class T>
inline T tanh_of(T v) { return std::tanh(v); }
#if KILN_SDK_HAS_XSIMD
template <class T, class A>
inline xsimd::batch<T, A> tanh_of(const xsimd::batch<T, A>& v) { return xsimd::tanh(v); }
#endif

template <class T>
inline T relu(T v) { return v > T(0) ? v : T(0); }
#if KILN_SDK_HAS_XSIMD
template <class T, class A>
inline xsimd::batch<T, A> relu(const xsimd::batch<T, A>& v) { return xsimd::max(v, xsimd::batch<T, A>(T(0))); }
#endif

/// dy where y > 0, else 0 (the gradient through relu, given its output y).
template <class T>
inline T relu_grad(T y, T dy) { return y > T(0) ? dy : T(0); }
#if KILN_SDK_HAS_XSIMD
template <class T, class A>
inline xsimd::batch<T, A> relu_grad(const xsimd::batch<T, A>& y, const xsimd::batch<T, A>& dy) {
  return xsimd::select(y > xsimd::batch<T, A>(T(0)), dy, xsimd::batch<T, A>(T(0)));
}
#endif

}  // namespace kiln::sdk::simd

// math::sum_dims: the sum over some dimensions, the reduction behind sum, mean and every broadcast's
// gradient (sum_to). xtensor's reducer walks a stepper per element (about 1 ns each); this one merges
// neighbouring dimensions so that the innermost loop runs over one contiguous block, either summed
// into one value (reduced innermost) or added into a row of the output (kept innermost). The order of
// the additions is fixed, so the result does not depend on threads or on the machine's load.

#include <xsimd/xsimd.hpp>

#include "tensor/dispatch.hpp"
#include "tensor/math.hpp"
#include "tensor/runs.hpp"

namespace kiln::math {
namespace {

// Sum of p[0, n): xsimd batches into four accumulators, then the tail, in this order.
template <class T>
T sum_run(const T* p, std::int64_t n) {
  using B = xsimd::batch<T>;
  constexpr std::int64_t W = static_cast<std::int64_t>(B::size);
  B a0(T(0)), a1(T(0)), a2(T(0)), a3(T(0));
  std::int64_t j = 0;
  for (; j + 4 * W <= n; j += 4 * W) {
    a0 += B::load_unaligned(p + j);
    a1 += B::load_unaligned(p + j + W);
    a2 += B::load_unaligned(p + j + 2 * W);
    a3 += B::load_unaligned(p + j + 3 * W);
  }
  for (; j + W <= n; j += W) a0 += B::load_unaligned(p + j);
  T s = xsimd::hadd((a0 + a1) + (a2 + a3));
  for (; j < n; ++j) s += p[j];
  return s;
}

// out[0, n) += p[0, n)
template <class T>
void add_run(T* out, const T* p, std::int64_t n) {
  for (std::int64_t j = 0; j < n; ++j) out[j] += p[j];
}

}  // namespace

Tensor sum_dims(const Tensor& t, const std::vector<bool>& reduce) {
  KILN_CHECK(t.defined(), "sum: the tensor is undefined");
  KILN_CHECK(static_cast<int>(reduce.size()) == t.dim(), "sum: {} flags for a tensor of shape {}", reduce.size(),
             t.shape());
  Shape kept = t.shape();
  for (int i = 0; i < t.dim(); ++i)
    if (reduce[static_cast<std::size_t>(i)]) kept[i] = 1;
  Tensor out = zeros(kept, t.dtype());
  if (t.numel() == 0) return out;
  // Runs of neighbouring dimensions of one kind (reduced or kept), size-1 dimensions dropped.
  std::vector<std::int64_t> size;
  std::vector<bool> reduced;
  for (int i = 0; i < t.dim(); ++i) {
    const std::int64_t n = t.shape()[i];
    const bool r = reduce[static_cast<std::size_t>(i)];
    if (n == 1) continue;
    if (!size.empty() && reduced.back() == r)
      size.back() *= n;
    else
      size.push_back(n), reduced.push_back(r);
  }
  if (size.empty()) size = {1}, reduced = {true};
  dispatch_float(t.dtype(), "sum", [&](auto tag) {
    using T = decltype(tag);
    const T* in = t.data<T>();
    T* o = out.data<T>();
    const std::size_t last = size.size() - 1;
    const std::int64_t n = size[last];
    // Output strides of the runs (0 for reduced ones; the last is walked within a run).
    std::vector<std::int64_t> ostride(size.size(), 0);
    std::int64_t step = reduced[last] ? 1 : n;
    for (std::size_t k = last; k-- > 0;) {
      if (!reduced[k]) ostride[k] = step, step *= size[k];
    }
    runs::for_each_run(size, ostride, [&](std::int64_t at) {
      if (reduced[last])
        o[at] += sum_run(in, n);
      else
        add_run(o + at, in, n);
      in += n;
    });
  });
  return out;
}

}  // namespace kiln::math

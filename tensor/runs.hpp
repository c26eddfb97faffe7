#pragma once
// Internal: the walk behind the strided kernels of tensor/ (expand, sum_dims). One side is contiguous;
// the other is addressed through strides over merged dimensions, with the innermost dimension one
// run of `size.back()` elements.

#include <cstdint>
#include <vector>

namespace kiln::runs {

/// Calls run(offset) once per position of the dims before the last, in row-major order, where offset =
/// sum of index[k] * stride[k] over those dims (the strided side's start of the run). size is not
/// empty; the caller advances the contiguous side by size.back() per call.
template <class F>
void for_each_run(const std::vector<std::int64_t>& size, const std::vector<std::int64_t>& stride, F&& run) {
  const std::size_t outer = size.size() - 1;
  std::vector<std::int64_t> idx(outer, 0);
  std::int64_t at = 0;
  for (;;) {
    run(at);
    std::size_t k = outer;
    for (; k-- > 0;) {  // the odometer: the last outer dim turns fastest
      at += stride[k];
      if (++idx[k] < size[k]) break;
      at -= stride[k] * size[k];
      idx[k] = 0;
    }
    if (k == static_cast<std::size_t>(-1)) return;
  }
}

}  // namespace kiln::runs

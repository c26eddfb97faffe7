#pragma once
// Tensor-level math that records nothing: the building blocks of forward kernels and of backward
// closures. Binary functions broadcast as NumPy does; float32 and float64 only unless noted.

#include "tensor/tensor.hpp"

namespace kiln::math {

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor neg(const Tensor& a);
/// a * s
Tensor scale(const Tensor& a, double s);
/// a += b in place (same shape and dtype).
void add_(Tensor& a, const Tensor& b);
/// a += s * b in place (same shape and dtype).
void axpy_(Tensor& a, double s, const Tensor& b);

/// t[..., start + k * step, ...] += g[..., k, ...] along `dim`, in place; g's other dims match t's.
void add_slice_(Tensor& t, const Tensor& g, int dim, std::int64_t start, std::int64_t step);

/// The sum over the dimensions flagged in `reduce` (one flag per dimension), with those dimensions
/// kept at size 1. Deterministic: a fixed order of additions.
Tensor sum_dims(const Tensor& t, const std::vector<bool>& reduce);
/// Sums `t` down to `shape` (the inverse of broadcasting `shape` up to t's shape).
Tensor sum_to(const Tensor& t, const Shape& shape);
/// Broadcasts `t` up to `shape`, materialised.
Tensor expand(const Tensor& t, const Shape& shape);
/// Copy of `t` with its axes permuted (out.shape[i] = t.shape[perm[i]]).
Tensor permute(const Tensor& t, const std::vector<int>& perm);

/// False when any element is NaN or Inf (always true for integer and bool tensors).
bool all_finite(const Tensor& t);
/// Sum of all elements as a double.
double sum_all(const Tensor& t);

}  // namespace kiln::math

// matmul and linear on BLAS GEMM with transpose flags.

#include <algorithm>

#include "autograd/tape.hpp"
#include "ops/elementwise.hpp"
#include "ops/gemm.hpp"
#include "ops/ops.hpp"

namespace kiln {
namespace {

Shape batch_of(const Shape& s) {
  Shape b;
  for (int i = 0; i + 2 < s.rank(); ++i) b.push_back(s[i]);
  return b;
}

// For every flat index into `out` (a broadcast batch shape), the flat index into `in`.
std::vector<std::int64_t> broadcast_map(const Shape& out, const Shape& in) {
  std::vector<std::int64_t> map(static_cast<std::size_t>(out.numel()));
  const int lead = out.rank() - in.rank();
  std::vector<std::int64_t> pos(static_cast<std::size_t>(out.rank()), 0);
  for (auto& m : map) {
    std::int64_t flat = 0;
    for (int k = 0; k < in.rank(); ++k) flat = flat * in[k] + (in[k] == 1 ? 0 : pos[static_cast<std::size_t>(k + lead)]);
    m = flat;
    for (int k = out.rank() - 1; k >= 0; --k) {
      if (++pos[static_cast<std::size_t>(k)] < out[k]) break;
      pos[static_cast<std::size_t>(k)] = 0;
    }
  }
  return map;
}

// C = A B for A [..., m, k] and B [..., k, n], both rank >= 2.
Variable matmul_nd(const Variable& a, const Variable& b) {
  const Shape& as = a.shape();
  const Shape& bs = b.shape();
  const std::int64_t m = as[as.rank() - 2], k = as[as.rank() - 1], n = bs[bs.rank() - 1];
  KILN_CHECK(bs[bs.rank() - 2] == k, "matmul: shapes {} and {} cannot be multiplied ({} columns vs {} rows)", as, bs,
             k, bs[bs.rank() - 2]);
  const Shape ab = batch_of(as), bb = batch_of(bs);
  const Shape batch = broadcast_shapes(ab, bb, "matmul");
  Shape out = batch;
  out.push_back(m);
  out.push_back(n);
  // Note [Flattened matmul]: with an unbatched B, A's batch folds into its rows: one GEMM.
  const bool fold = bb.empty();
  const auto amap = std::make_shared<std::vector<std::int64_t>>(fold ? std::vector<std::int64_t>{} : broadcast_map(batch, ab));
  const auto bmap = std::make_shared<std::vector<std::int64_t>>(fold ? std::vector<std::int64_t>{} : broadcast_map(batch, bb));
  const std::int64_t nbatch = fold ? 1 : batch.numel(), rows = fold ? ab.numel() * m : m;
  const Tensor av = a.value(), bv = b.value();
  Tensor y(out, a.dtype());
  dispatch_float(a.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    for (std::int64_t i = 0; i < nbatch; ++i) {
      const std::int64_t ia = fold ? 0 : (*amap)[static_cast<std::size_t>(i)];
      const std::int64_t ib = fold ? 0 : (*bmap)[static_cast<std::size_t>(i)];
      blas::gemm<T>(false, false, rows, n, k, T(1), av.data<T>() + ia * m * k, k, bv.data<T>() + ib * k * n, n, T(0),
                    y.data<T>() + i * m * n, n);
    }
  });
  return record("matmul", y, {a, b}, [=](const Tensor& dy, Grads& g) {
    dispatch_float(dy.dtype(), "matmul", [&](auto tag) {
      using T = decltype(tag);
      // Summing over broadcast batches: accumulate (beta = 1) into zeroed gradients.
      const bool a_bcast = !fold && ab.numel() != nbatch, b_bcast = fold || bb.numel() != nbatch;
      if (g.needs(0)) {  // dA = dC B^T
        Tensor da = a_bcast ? zeros(as, dy.dtype()) : Tensor(as, dy.dtype());
        for (std::int64_t i = 0; i < nbatch; ++i) {
          const std::int64_t ia = fold ? 0 : (*amap)[static_cast<std::size_t>(i)];
          const std::int64_t ib = fold ? 0 : (*bmap)[static_cast<std::size_t>(i)];
          blas::gemm<T>(false, true, rows, k, n, T(1), dy.data<T>() + i * m * n, n, bv.data<T>() + ib * k * n, n,
                        T(a_bcast ? 1 : 0), da.data<T>() + ia * m * k, k);
        }
        g.add(0, std::move(da));
      }
      if (g.needs(1)) {  // dB = A^T dC
        Tensor db = b_bcast && !fold ? zeros(bs, dy.dtype()) : Tensor(bs, dy.dtype());
        for (std::int64_t i = 0; i < nbatch; ++i) {
          const std::int64_t ia = fold ? 0 : (*amap)[static_cast<std::size_t>(i)];
          const std::int64_t ib = fold ? 0 : (*bmap)[static_cast<std::size_t>(i)];
          blas::gemm<T>(true, false, k, n, rows, T(1), av.data<T>() + ia * m * k, k, dy.data<T>() + i * m * n, n,
                        T(b_bcast && !fold ? 1 : 0), db.data<T>() + ib * k * n, n);
        }
        g.add(1, std::move(db));
      }
    });
  });
}

}  // namespace

Variable matmul(const Variable& a, const Variable& b) {
  detail::check_same_dtype(a, b, "matmul");
  KILN_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: both operands need at least one dimension, got {} and {}",
             a.shape(), b.shape());
  // numpy.matmul's rules for vectors: a 1-D A is a row, a 1-D B a column; the added dim is removed.
  if (a.dim() == 1 && b.dim() == 1) {
    KILN_CHECK(a.shape() == b.shape(), "matmul: vectors of shapes {} and {} differ in length", a.shape(), b.shape());
    return reshape(matmul_nd(unsqueeze(a, 0), unsqueeze(b, 1)), {});
  }
  if (a.dim() == 1) return squeeze(matmul_nd(unsqueeze(a, 0), b), -2);
  if (b.dim() == 1) return squeeze(matmul_nd(a, unsqueeze(b, 1)), -1);
  return matmul_nd(a, b);
}

// y = x W^T + b; dx = dy W, dW = dy^T x, db = sum of dy over rows
Variable linear(const Variable& x, const Variable& weight, const Variable& bias) {
  detail::check_same_dtype(x, weight, "linear");
  KILN_CHECK(weight.dim() == 2, "linear: weight must be 2-D [out_features, in_features], got {}", weight.shape());
  KILN_CHECK(x.dim() >= 1 && x.shape()[x.dim() - 1] == weight.shape()[1],
             "linear: input of shape {} does not match weight of shape {} (expected last dim {})", x.shape(),
             weight.shape(), weight.shape()[1]);
  const std::int64_t in = weight.shape()[1], out_f = weight.shape()[0];
  std::int64_t rows = 1;
  for (int i = 0; i + 1 < x.dim(); ++i) rows *= x.shape()[i];
  if (bias.defined()) {
    detail::check_same_dtype(x, bias, "linear");
    KILN_CHECK(bias.dim() == 1 && bias.shape()[0] == out_f, "linear: bias of shape {} does not match weight {}",
               bias.shape(), weight.shape());
  }
  Shape out = x.shape();
  out[out.rank() - 1] = out_f;
  const Tensor xv = x.value(), wv = weight.value();
  Tensor y(out, x.dtype());
  dispatch_float(x.dtype(), "linear", [&](auto tag) {
    using T = decltype(tag);
    T* yp = y.data<T>();
    if (bias.defined()) {
      const T* bp = bias.value().data<T>();
      for (std::int64_t r = 0; r < rows; ++r) std::copy(bp, bp + out_f, yp + r * out_f);
    }
    blas::gemm<T>(false, true, rows, out_f, in, T(1), xv.data<T>(), in, wv.data<T>(), in, T(bias.defined() ? 1 : 0),
                  yp, out_f);
  });
  std::vector<Variable> inputs{x, weight};
  if (bias.defined()) inputs.push_back(bias);
  return record("linear", y, inputs, [xv, wv, rows, in, out_f](const Tensor& dy, Grads& g) {
    dispatch_float(dy.dtype(), "linear", [&](auto tag) {
      using T = decltype(tag);
      if (g.needs(0)) {
        Tensor dx(xv.shape(), dy.dtype());
        blas::gemm<T>(false, false, rows, in, out_f, T(1), dy.data<T>(), out_f, wv.data<T>(), in, T(0), dx.data<T>(), in);
        g.add(0, std::move(dx));
      }
      if (g.needs(1)) {
        Tensor dw(wv.shape(), dy.dtype());
        blas::gemm<T>(true, false, out_f, in, rows, T(1), dy.data<T>(), out_f, xv.data<T>(), in, T(0), dw.data<T>(), in);
        g.add(1, std::move(dw));
      }
      if (g.size() > 2 && g.needs(2)) {
        Tensor db = zeros(Shape{out_f}, dy.dtype());
        T* bp = db.data<T>();
        const T* d = dy.data<T>();
        for (std::int64_t r = 0; r < rows; ++r)
          for (std::int64_t j = 0; j < out_f; ++j) bp[j] += d[r * out_f + j];
        g.add(2, std::move(db));
      }
    });
  });
}

}  // namespace kiln

// Shape ops: reshape, permute, squeeze, concat/stack/split, slicing, indexing and flip. Data moves as
// raw element blocks along an (outer, axis, inner) decomposition of the shape, for any dtype.

#include <algorithm>
#include <cstring>
#include <numeric>

#include "autograd/tape.hpp"
#include "ops/elementwise.hpp"
#include "ops/ops.hpp"

namespace kiln {
namespace {

// A tensor seen as [outer, axis, inner] around dimension `dim`.
struct Around {
  std::int64_t outer = 1, axis = 1, inner = 1;
  Around(const Shape& s, int dim) {
    for (int i = 0; i < dim; ++i) outer *= s[i];
    axis = s[dim];
    for (int i = dim + 1; i < s.rank(); ++i) inner *= s[i];
  }
};

// dst[o, dst_at + k, :] = src[o, src_at + k * step, :] for k < count, in element units of `bytes`.
void copy_rows(const Tensor& src, const Around& s, std::int64_t src_at, std::int64_t step, Tensor& dst,
               const Around& d, std::int64_t dst_at, std::int64_t count) {
  const std::size_t es = element_size(src.dtype());
  const auto* in = static_cast<const char*>(src.raw_data());
  auto* out = static_cast<char*>(dst.raw_data());
  const auto block = static_cast<std::size_t>(s.inner) * es;
  for (std::int64_t o = 0; o < s.outer; ++o)
    for (std::int64_t k = 0; k < count; ++k)
      std::memcpy(out + static_cast<std::size_t>((o * d.axis + dst_at + k) * d.inner) * es,
                  in + static_cast<std::size_t>((o * s.axis + src_at + k * step) * s.inner) * es, block);
}


Variable view_as(const Variable& x, const Shape& shape, const char* op) {
  const Shape in = x.shape();
  Tensor y = x.value().reshape(shape.vec());
  return record(op, y, {x}, [in](const Tensor& dy, Grads& g) { g.add(0, dy.reshape(in.vec())); });
}

void check_index(const Variable& index, const char* op) {
  KILN_CHECK(index.defined() && index.dtype() == kInt64, "{}: the index must be an int64 tensor, got {} {}", op,
             index.defined() ? dtype_name(index.dtype()) : "undefined", index.defined() ? index.shape() : Shape{});
}

}  // namespace

Variable reshape(const Variable& x, const std::vector<std::int64_t>& shape) {
  KILN_CHECK(x.defined(), "reshape: input is undefined");
  return view_as(x, x.value().reshape(shape).shape(), "reshape");
}

Variable flatten(const Variable& x, std::int64_t start, std::int64_t end) {
  KILN_CHECK(x.defined(), "flatten: input is undefined");
  if (x.dim() == 0) return reshape(x, {1});
  const int s = normalize_axis(start, x.dim(), "flatten"), e = normalize_axis(end, x.dim(), "flatten");
  KILN_CHECK(s <= e, "flatten: start dimension {} comes after end dimension {}", start, end);
  Shape out;
  for (int i = 0; i < s; ++i) out.push_back(x.shape()[i]);
  std::int64_t n = 1;
  for (int i = s; i <= e; ++i) n *= x.shape()[i];
  out.push_back(n);
  for (int i = e + 1; i < x.dim(); ++i) out.push_back(x.shape()[i]);
  return view_as(x, out, "flatten");
}

// y = x with axes permuted; dx = permute(dy, inverse)
Variable permute(const Variable& x, const std::vector<std::int64_t>& dims) {
  KILN_CHECK(x.defined(), "permute: input is undefined");
  KILN_CHECK(static_cast<int>(dims.size()) == x.dim(), "permute: {} dims given for a tensor of shape {}",
             dims.size(), x.shape());
  std::vector<int> perm, inverse(dims.size(), -1);
  for (std::size_t i = 0; i < dims.size(); ++i) {
    const int d = normalize_axis(dims[i], x.dim(), "permute");
    KILN_CHECK(inverse[static_cast<std::size_t>(d)] < 0, "permute: dimension {} repeats in [{}]", dims[i],
               fmt::join(dims, ", "));
    inverse[static_cast<std::size_t>(d)] = static_cast<int>(i);
    perm.push_back(d);
  }
  Tensor y = math::permute(x.value(), perm);
  return record("permute", y, {x}, [inverse](const Tensor& dy, Grads& g) { g.add(0, math::permute(dy, inverse)); });
}

Variable transpose(const Variable& x, std::int64_t dim0, std::int64_t dim1) {
  KILN_CHECK(x.defined(), "transpose: input is undefined");
  std::vector<std::int64_t> dims(static_cast<std::size_t>(x.dim()));
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[static_cast<std::size_t>(normalize_axis(dim0, x.dim(), "transpose"))],
            dims[static_cast<std::size_t>(normalize_axis(dim1, x.dim(), "transpose"))]);
  return permute(x, dims);
}

Variable squeeze(const Variable& x, std::optional<std::int64_t> dim) {
  KILN_CHECK(x.defined(), "squeeze: input is undefined");
  Shape out;
  const int only = dim ? normalize_axis(*dim, x.dim(), "squeeze") : -1;
  for (int i = 0; i < x.dim(); ++i)
    if (x.shape()[i] != 1 || (dim && i != only)) out.push_back(x.shape()[i]);
  return view_as(x, out, "squeeze");
}

Variable unsqueeze(const Variable& x, std::int64_t dim) {
  KILN_CHECK(x.defined(), "unsqueeze: input is undefined");
  const int d = normalize_axis(dim, x.dim() + 1, "unsqueeze");
  Shape out = x.shape();
  out.insert(d, 1);
  return view_as(x, out, "unsqueeze");
}

// y = [x_0, x_1, ...] along dim; dx_i = the slice of dy that x_i filled
Variable concat(const std::vector<Variable>& xs, std::int64_t dim) {
  KILN_CHECK(!xs.empty(), "concat: expected at least one tensor");
  for (std::size_t i = 0; i < xs.size(); ++i) KILN_CHECK(xs[i].defined(), "concat: tensor {} is undefined", i);
  const Shape& first = xs[0].shape();
  const int d = normalize_axis(dim, first.rank(), "concat");
  Shape out = first;
  out[d] = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const Shape& s = xs[i].shape();
    bool ok = s.rank() == first.rank() && xs[i].dtype() == xs[0].dtype();
    for (int k = 0; ok && k < s.rank(); ++k) ok = k == d || s[k] == first[k];
    KILN_CHECK(ok, "concat: tensor {} ({} {}) does not match tensor 0 ({} {}) outside dimension {}", i,
               xs[i].dtype(), s, xs[0].dtype(), first, d);
    out[d] += s[d];
  }
  Tensor y(out, xs[0].dtype());
  const Around yo(out, d);
  std::vector<std::int64_t> offsets;
  std::int64_t at = 0;
  for (const auto& x : xs) {
    offsets.push_back(at);
    copy_rows(x.value(), Around(x.shape(), d), 0, 1, y, yo, at, x.shape()[d]);
    at += x.shape()[d];
  }
  std::vector<Shape> shapes;
  for (const auto& x : xs) shapes.push_back(x.shape());
  Variable result = record("concat", y, xs, [shapes, offsets, d, yo](const Tensor& dy, Grads& g) {
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      if (!g.needs(i)) continue;
      Tensor dx(shapes[i], dy.dtype());
      copy_rows(dy, yo, offsets[i], 1, dx, Around(shapes[i], d), 0, shapes[i][d]);
      g.add(i, std::move(dx));
    }
  });
  note_attrs(result, {static_cast<double>(d)});
  return result;
}

Variable stack(const std::vector<Variable>& xs, std::int64_t dim) {
  KILN_CHECK(!xs.empty(), "stack: expected at least one tensor");
  const int d = normalize_axis(dim, xs[0].dim() + 1, "stack");
  for (std::size_t i = 1; i < xs.size(); ++i)
    KILN_CHECK(xs[i].shape() == xs[0].shape(), "stack: tensor {} has shape {} but tensor 0 has shape {}", i,
               xs[i].shape(), xs[0].shape());
  std::vector<Variable> parts;
  parts.reserve(xs.size());
  for (const auto& x : xs) parts.push_back(unsqueeze(x, d));
  return concat(parts, d);
}

// y = x[start : end : step] along dim (Python semantics); dx scatters dy back into zeros
Variable slice(const Variable& x, std::int64_t dim, std::int64_t start, std::int64_t end, std::int64_t step) {
  KILN_CHECK(x.defined(), "slice: input is undefined");
  KILN_CHECK(step > 0, "slice: step must be positive, got {}", step);
  const int d = normalize_axis(dim, x.dim(), "slice");
  const std::int64_t n = x.shape()[d];
  auto clampi = [n](std::int64_t i) { return std::clamp(i < 0 ? i + n : i, std::int64_t{0}, n); };
  const std::int64_t s = clampi(start), e = clampi(end);
  const std::int64_t count = e > s ? (e - s + step - 1) / step : 0;
  Shape out = x.shape();
  out[d] = count;
  const Around xa(x.shape(), d), ya(out, d);
  Tensor y;
  if (xa.outer == 1 && (step == 1 || count <= 1)) {  // one contiguous range: a view, no copy (Note [Views])
    y = x.value().view_range(s * xa.inner, out);
  } else {
    y = Tensor(out, x.dtype());
    copy_rows(x.value(), xa, s, step, y, ya, 0, count);
  }
  Variable result = record("slice", y, {x}, [d, s, step](const Tensor& dy, Grads& g) { g.add_slice(0, dy, d, s, step); });
  note_attrs(result, {static_cast<double>(d), static_cast<double>(s), static_cast<double>(step)});
  return result;
}

Variable narrow(const Variable& x, std::int64_t dim, std::int64_t start, std::int64_t length) {
  KILN_CHECK(x.defined(), "narrow: input is undefined");
  const int d = normalize_axis(dim, x.dim(), "narrow");
  const std::int64_t n = x.shape()[d];
  const std::int64_t s = start < 0 ? start + n : start;
  KILN_CHECK(s >= 0 && length >= 0 && s + length <= n,
             "narrow: start {} and length {} are out of range for dimension {} of size {} (shape {})", start,
             length, dim, n, x.shape());
  return slice(x, d, s, s + length, 1);
}

std::vector<Variable> split(const Variable& x, std::int64_t size, std::int64_t dim) {
  KILN_CHECK(x.defined(), "split: input is undefined");
  KILN_CHECK(size > 0, "split: size must be positive, got {}", size);
  const int d = normalize_axis(dim, x.dim(), "split");
  std::vector<Variable> out;
  for (std::int64_t at = 0; at < x.shape()[d]; at += size)
    out.push_back(narrow(x, d, at, std::min(size, x.shape()[d] - at)));
  return out;
}

std::vector<Variable> chunk(const Variable& x, std::int64_t chunks, std::int64_t dim) {
  KILN_CHECK(x.defined(), "chunk: input is undefined");
  KILN_CHECK(chunks > 0, "chunk: number of chunks must be positive, got {}", chunks);
  const int d = normalize_axis(dim, x.dim(), "chunk");
  const std::int64_t n = x.shape()[d];
  return split(x, std::max<std::int64_t>(1, (n + chunks - 1) / chunks), d);
}

// y[..., j, ...] = x[..., index[j], ...]; dx[..., index[j], ...] += dy[..., j, ...]
Variable index_select(const Variable& x, std::int64_t dim, const Variable& index) {
  KILN_CHECK(x.defined(), "index_select: input is undefined");
  check_index(index, "index_select");
  KILN_CHECK(index.dim() == 1, "index_select: the index must be 1-D, got shape {}", index.shape());
  const int d = normalize_axis(dim, x.dim(), "index_select");
  const Tensor idx = index.value();
  const auto* ip = idx.data<std::int64_t>();
  const std::int64_t n = x.shape()[d];
  for (std::int64_t j = 0; j < idx.numel(); ++j)
    KILN_CHECK(ip[j] >= 0 && ip[j] < n, "index_select: index {} at position {} is out of range for dimension {} "
               "of size {} (shape {})", ip[j], j, d, n, x.shape());
  Shape out = x.shape();
  out[d] = idx.numel();
  Tensor y(out, x.dtype());
  const Around xa(x.shape(), d), ya(out, d);
  for (std::int64_t j = 0; j < idx.numel(); ++j) copy_rows(x.value(), xa, ip[j], 1, y, ya, j, 1);
  const Shape in = x.shape();
  return record("index_select", y, {x, index}, [in, idx, xa, ya](const Tensor& dy, Grads& g) {
    if (!g.needs(0)) return;
    Tensor dx = zeros(in, dy.dtype());
    dispatch_float(dy.dtype(), "index_select", [&](auto tag) {
      using T = decltype(tag);
      const T* src = dy.data<T>();
      T* dst = dx.data<T>();
      const auto* ip = idx.data<std::int64_t>();
      for (std::int64_t o = 0; o < xa.outer; ++o)
        for (std::int64_t j = 0; j < ya.axis; ++j) {
          const T* s = src + (o * ya.axis + j) * ya.inner;
          T* t = dst + (o * xa.axis + ip[j]) * xa.inner;
          for (std::int64_t k = 0; k < xa.inner; ++k) t[k] += s[k];
        }
    });
    g.add(0, std::move(dx));
  });
}

// y[i][j][k] = x[i][index[i][j][k]][k] (for dim 1); dx scatter-adds dy at the same places
Variable gather(const Variable& x, std::int64_t dim, const Variable& index) {
  KILN_CHECK(x.defined(), "gather: input is undefined");
  check_index(index, "gather");
  KILN_CHECK(index.dim() == x.dim(), "gather: index of shape {} must have the rank of the input {}", index.shape(),
             x.shape());
  const int d = normalize_axis(dim, x.dim(), "gather");
  for (int k = 0; k < x.dim(); ++k)
    KILN_CHECK(k == d || index.shape()[k] <= x.shape()[k],
               "gather: index shape {} exceeds input shape {} in dimension {}", index.shape(), x.shape(), k);
  const Tensor idx = index.value();
  // Strides of x for the positions the index walks over.
  const Shape xs = x.shape(), is = idx.shape();
  std::vector<std::int64_t> stride(static_cast<std::size_t>(xs.rank()), 1);
  for (int k = xs.rank() - 2; k >= 0; --k) stride[static_cast<std::size_t>(k)] = stride[static_cast<std::size_t>(k) + 1] * xs[k + 1];
  auto offsets = std::make_shared<std::vector<std::int64_t>>(static_cast<std::size_t>(idx.numel()));
  const auto* ip = idx.data<std::int64_t>();
  std::vector<std::int64_t> pos(static_cast<std::size_t>(is.rank()), 0);
  for (std::int64_t e = 0; e < idx.numel(); ++e) {
    KILN_CHECK(ip[e] >= 0 && ip[e] < xs[d], "gather: index {} at flat position {} is out of range for dimension {} "
               "of size {} (input shape {})", ip[e], e, d, xs[d], xs);
    std::int64_t off = 0;
    for (int k = 0; k < is.rank(); ++k) off += (k == d ? ip[e] : pos[static_cast<std::size_t>(k)]) * stride[static_cast<std::size_t>(k)];
    (*offsets)[static_cast<std::size_t>(e)] = off;
    for (int k = is.rank() - 1; k >= 0; --k) {
      if (++pos[static_cast<std::size_t>(k)] < is[k]) break;
      pos[static_cast<std::size_t>(k)] = 0;
    }
  }
  Tensor y(is, x.dtype());
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = static_cast<const T*>(x.value().raw_data());
    T* dst = static_cast<T*>(y.raw_data());
    for (std::size_t e = 0; e < offsets->size(); ++e) dst[e] = src[(*offsets)[e]];
  });
  return record("gather", y, {x, index}, [xs, offsets](const Tensor& dy, Grads& g) {
    if (!g.needs(0)) return;
    Tensor dx = zeros(xs, dy.dtype());
    dispatch_float(dy.dtype(), "gather", [&](auto tag) {
      using T = decltype(tag);
      const T* src = dy.data<T>();
      T* dst = dx.data<T>();
      for (std::size_t e = 0; e < offsets->size(); ++e) dst[(*offsets)[e]] += src[e];
    });
    g.add(0, std::move(dx));
  });
}

// y[..., :] = W[ids[...], :]; dW[ids[...], :] += dy[..., :] except at padding_idx
Variable embedding(const Variable& weight, const Variable& ids, std::int64_t padding_idx) {
  KILN_CHECK(weight.defined() && weight.dim() == 2, "embedding: weight must be 2-D [num_embeddings, dim], got {}",
             weight.defined() ? weight.shape() : Shape{});
  check_index(ids, "embedding");
  const std::int64_t num = weight.shape()[0], dim = weight.shape()[1];
  KILN_CHECK(padding_idx < num, "embedding: padding_idx {} is out of range for {} embeddings", padding_idx, num);
  const Tensor idx = ids.value();
  const auto* ip = idx.data<std::int64_t>();
  for (std::int64_t j = 0; j < idx.numel(); ++j)
    KILN_CHECK(ip[j] >= 0 && ip[j] < num, "embedding: id {} at flat position {} is out of range for {} embeddings "
               "(ids shape {})", ip[j], j, num, idx.shape());
  Shape out = idx.shape();
  out.push_back(dim);
  Tensor y(out, weight.dtype());
  const std::size_t row = static_cast<std::size_t>(dim) * element_size(weight.dtype());
  const auto* src = static_cast<const char*>(weight.value().raw_data());
  auto* dst = static_cast<char*>(y.raw_data());
  for (std::int64_t j = 0; j < idx.numel(); ++j)
    std::memcpy(dst + static_cast<std::size_t>(j) * row, src + static_cast<std::size_t>(ip[j]) * row, row);
  const Shape wshape = weight.shape();
  return record("embedding", y, {weight, ids}, [idx, wshape, padding_idx](const Tensor& dy, Grads& g) {
    if (!g.needs(0)) return;
    Tensor dw = zeros(wshape, dy.dtype());
    dispatch_float(dy.dtype(), "embedding", [&](auto tag) {
      using T = decltype(tag);
      const auto* ip = idx.data<std::int64_t>();
      const std::int64_t d = wshape[1];
      const T* s = dy.data<T>();
      T* w = dw.data<T>();
      for (std::int64_t j = 0; j < idx.numel(); ++j) {
        if (ip[j] == padding_idx) continue;
        for (std::int64_t k = 0; k < d; ++k) w[ip[j] * d + k] += s[j * d + k];
      }
    });
    g.add(0, std::move(dw));
  });
}

// y = x reversed along dims; dx = flip(dy, dims)
Variable flip(const Variable& x, const Axes& dims) {
  KILN_CHECK(x.defined(), "flip: input is undefined");
  std::vector<bool> rev(static_cast<std::size_t>(x.dim()), false);
  for (auto a : dims) {
    const int d = normalize_axis(a, x.dim(), "flip");
    KILN_CHECK(!rev[static_cast<std::size_t>(d)], "flip: dimension {} repeats", a);
    rev[static_cast<std::size_t>(d)] = true;
  }
  auto run = [rev](const Tensor& src) {
    Tensor out = src.clone();
    for (int d = 0; d < src.dim(); ++d) {
      if (!rev[static_cast<std::size_t>(d)]) continue;
      const Tensor cur = out.clone();
      const Around a(src.shape(), d);
      for (std::int64_t k = 0; k < a.axis; ++k) copy_rows(cur, a, a.axis - 1 - k, 1, out, a, k, 1);
    }
    return out;
  };
  Tensor y = run(x.value());
  return record("flip", y, {x}, [run](const Tensor& dy, Grads& g) { g.add(0, run(dy)); });
}

}  // namespace kiln

#include "tensor/tensor.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <ostream>
#include <sstream>

#include <xtensor/xio.hpp>

#include "tensor/dispatch.hpp"
#include "tensor/xt.hpp"

namespace kiln {

Tensor::Tensor(const Shape& shape, DType dtype)
    : storage_(std::make_shared<Storage>(static_cast<std::size_t>(shape.numel()) * element_size(dtype))),
      shape_(shape),
      dtype_(dtype) {}

std::int64_t Tensor::size(std::int64_t d) const { return shape_[normalize_axis(d, dim(), "size")]; }

double Tensor::item() const {
  KILN_CHECK(defined(), "item: the tensor is undefined");
  KILN_CHECK(numel() == 1, "item: expected a tensor with one element, got shape {}", shape_);
  return dispatch_all(dtype_, [&](auto tag) {
    using T = decltype(tag);
    return static_cast<double>(*static_cast<const T*>(raw_data()));
  });
}

std::vector<double> Tensor::to_vector() const {
  KILN_CHECK(defined(), "to_vector: the tensor is undefined");
  return dispatch_all(dtype_, [&](auto tag) {
    using T = decltype(tag);
    const T* p = static_cast<const T*>(raw_data());
    return std::vector<double>(p, p + numel());
  });
}

Tensor Tensor::reshape(const std::vector<std::int64_t>& dims) const {
  KILN_CHECK(defined(), "reshape: the tensor is undefined");
  Shape target;
  int infer = -1;
  std::int64_t known = 1;
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == -1) {
      KILN_CHECK(infer < 0, "reshape: only one dimension can be -1, got [{}]", fmt::join(dims, ", "));
      infer = static_cast<int>(i);
      target.push_back(0);
      continue;
    }
    KILN_CHECK(dims[i] >= 0, "reshape: invalid size {} in [{}]", dims[i], fmt::join(dims, ", "));
    known *= dims[i];
    target.push_back(dims[i]);
  }
  if (infer >= 0) {
    KILN_CHECK(known != 0 && numel() % known == 0, "reshape: cannot reshape {} ({} elements) into [{}]",
               shape_, numel(), fmt::join(dims, ", "));
    target[infer] = numel() / known;
  }
  KILN_CHECK(target.numel() == numel(), "reshape: cannot reshape {} ({} elements) into {} ({} elements)",
             shape_, numel(), target, target.numel());
  Tensor out = *this;
  out.shape_ = target;
  return out;
}

Tensor Tensor::view_range(std::int64_t offset, const Shape& shape) const {
  KILN_CHECK(defined(), "view_range: the tensor is undefined");
  KILN_CHECK(offset >= 0 && shape.numel() >= 0 && offset + shape.numel() <= numel(),
             "view_range: elements [{}, {}) as {} do not fit in a tensor of shape {} ({} elements)", offset,
             offset + shape.numel(), shape, shape_, numel());
  Tensor out = *this;
  out.shape_ = shape;
  out.offset_ += static_cast<std::size_t>(offset) * element_size(dtype_);
  return out;
}

Tensor Tensor::clone() const {
  if (!defined()) return {};
  Tensor out(shape_, dtype_);
  if (nbytes() > 0) std::memcpy(out.raw_data(), raw_data(), nbytes());
  return out;
}

namespace {

// Note [Float to integer]: converting NaN, an infinity or a number beyond int64's range to an integer is
// undefined in C++ (x86 gives INT64_MIN). A tensor read from a file may hold any of them, so a
// conversion to int64 refuses them, naming the element, rather than making up a length or an index.
template <class D, class S>
D convert(S v, const char* op, std::int64_t index) {
  if constexpr (std::is_integral_v<D> && !std::is_same_v<D, bool> && std::is_floating_point_v<S>) {
    constexpr S lo = static_cast<S>(std::numeric_limits<D>::min());  // -2^63, exact
    KILN_CHECK(v >= lo && v < -lo, "{}: {} is {}, which is no {}", op, index < 0 ? "the value" : fmt::format("element {}", index),
               v, dtype_name(dtype_of<D>()));
  }
  return static_cast<D>(v);
}

}  // namespace

Tensor Tensor::to(DType dtype) const {
  KILN_CHECK(defined(), "to: the tensor is undefined");
  if (dtype == dtype_) return *this;
  Tensor out(shape_, dtype);
  dispatch_all(dtype_, [&](auto src_tag) {
    using S = decltype(src_tag);
    dispatch_all(dtype, [&](auto dst_tag) {
      using D = decltype(dst_tag);
      const S* src = static_cast<const S*>(raw_data());
      D* dst = static_cast<D*>(out.raw_data());
      for (std::int64_t i = 0; i < numel(); ++i) dst[i] = convert<D>(src[i], "to", i);
    });
  });
  return out;
}

Tensor& Tensor::fill_(double value) {
  KILN_CHECK(defined(), "fill_: the tensor is undefined");
  dispatch_all(dtype_, [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(raw_data());
    std::fill(p, p + numel(), convert<T>(value, "fill_", -1));
  });
  return *this;
}

Tensor empty(const Shape& shape, DType dtype) { return Tensor(shape, dtype); }
Tensor zeros(const Shape& shape, DType dtype) { return full(shape, 0.0, dtype); }
Tensor ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }
Tensor full(const Shape& shape, double value, DType dtype) {
  Tensor t(shape, dtype);
  t.fill_(value);
  return t;
}
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype()); }
Tensor scalar_tensor(double value, DType dtype) { return full(Shape{}, value, dtype); }

Tensor arange(double start, double end, double step, DType dtype) {
  KILN_CHECK(step != 0 && std::isfinite(step), "arange: step must be finite and nonzero, got {}", step);
  KILN_CHECK(std::isfinite(start) && std::isfinite(end), "arange: bounds must be finite, got {} and {}",
             start, end);
  const double count = std::ceil((end - start) / step);
  const auto n = static_cast<std::int64_t>(count > 0 ? count : 0);
  Tensor t(Shape{n}, dtype);
  dispatch_all(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(start + static_cast<double>(i) * step);
  });
  return t;
}

Tensor arange(double end, DType dtype) { return arange(0, end, 1, dtype); }

namespace {

template <class T, class V>
Tensor from_values(const std::vector<V>& values, const Shape& shape) {
  const Shape s = shape.empty() ? Shape{static_cast<std::int64_t>(values.size())} : shape;
  KILN_CHECK(s.numel() == static_cast<std::int64_t>(values.size()),
             "from_data: {} values do not fill shape {} ({} elements)", values.size(), s, s.numel());
  Tensor t(s, dtype_of<T>());
  T* p = t.data<T>();
  for (std::size_t i = 0; i < values.size(); ++i) p[i] = static_cast<T>(values[i]);
  return t;
}

}  // namespace

Tensor from_data(const std::vector<float>& v, const Shape& s) { return from_values<float>(v, s); }
Tensor from_data(const std::vector<double>& v, const Shape& s) { return from_values<double>(v, s); }
Tensor from_data(const std::vector<std::int64_t>& v, const Shape& s) { return from_values<std::int64_t>(v, s); }
Tensor from_data(const std::vector<bool>& v, const Shape& s) { return from_values<bool>(v, s); }
Tensor from_data(std::initializer_list<float> v, const Shape& s) { return from_values<float>(std::vector<float>(v), s); }
Tensor from_data(std::initializer_list<double> v, const Shape& s) { return from_values<double>(std::vector<double>(v), s); }

bool equal(const Tensor& a, const Tensor& b) {
  if (a.defined() != b.defined()) return false;
  if (!a.defined()) return true;
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  KILN_CHECK(a.shape() == b.shape(), "max_abs_diff: shapes {} and {} differ", a.shape(), b.shape());
  const auto va = a.to_vector(), vb = b.to_vector();
  double worst = 0;
  for (std::size_t i = 0; i < va.size(); ++i) {
    const double d = std::abs(va[i] - vb[i]);
    if (!(d <= worst)) worst = d;  // NaN propagates as the worst
  }
  return worst;
}

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol) {
  KILN_CHECK(a.shape() == b.shape(), "allclose: shapes {} and {} differ", a.shape(), b.shape());
  const auto va = a.to_vector(), vb = b.to_vector();
  for (std::size_t i = 0; i < va.size(); ++i)
    if (!(std::abs(va[i] - vb[i]) <= atol + rtol * std::abs(vb[i]))) return false;
  return true;
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "[ undefined tensor ]";
  dispatch_all(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (t.dim() == 0)
      os << +*t.data<T>();
    else
      os << xtv::nd<T>(t);
  });
  return os << "\n[ " << dtype_name(t.dtype()) << " " << t.shape().str() << " ]";
}

std::string to_string(const Tensor& t) {
  std::ostringstream os;
  os << t;
  return os.str();
}

}  // namespace kiln

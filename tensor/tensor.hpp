#pragma once
// Tensor: a dense, contiguous, row-major array of one dtype. Copies share storage (like torch::Tensor);
// clone() makes a deep copy. Tensors carry no autograd state: see autograd/variable.hpp.

#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "tensor/dtype.hpp"
#include "tensor/error.hpp"
#include "tensor/shape.hpp"
#include "tensor/storage.hpp"

namespace kiln {

class Tensor {
 public:
  /// An undefined tensor (no storage); defined() is false.
  Tensor() = default;
  /// Uninitialised storage for `shape` from the caching allocator. Prefer kiln::empty / zeros.
  Tensor(const Shape& shape, DType dtype);

  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int dim() const { return shape_.rank(); }
  /// Size of dimension `d` (negative counts from the end).
  std::int64_t size(std::int64_t d) const;
  std::int64_t numel() const { return shape_.numel(); }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * element_size(dtype_); }

  /// Typed pointer to the elements; throws when T does not match dtype().
  template <class T> T* data();
  template <class T> const T* data() const;
  void* raw_data() const { return storage_ ? storage_->data() : nullptr; }

  /// The single element of a one-element tensor, converted to double.
  double item() const;
  /// All elements converted to double, in row-major order.
  std::vector<double> to_vector() const;

  /// Same storage, new shape (one dim may be -1). Throws naming both shapes when sizes differ.
  Tensor reshape(const std::vector<std::int64_t>& shape) const;
  Tensor clone() const;
  /// A copy converted to `dtype` (the same tensor when it already has that dtype).
  Tensor to(DType dtype) const;
  /// Fills every element with `value` in place.
  Tensor& fill_(double value);

  /// How many tensors share this storage (1 means this one owns it alone).
  long use_count() const { return storage_.use_count(); }
  bool is_same(const Tensor& other) const { return storage_ == other.storage_; }

 private:
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  DType dtype_ = DType::Float32;
};

// Creation. Every function takes the dtype last, float32 by default.
Tensor empty(const Shape& shape, DType dtype = kFloat32);
Tensor zeros(const Shape& shape, DType dtype = kFloat32);
Tensor ones(const Shape& shape, DType dtype = kFloat32);
Tensor full(const Shape& shape, double value, DType dtype = kFloat32);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
/// A 0-d tensor holding `value`.
Tensor scalar_tensor(double value, DType dtype = kFloat32);
/// Values start, start+step, ... below end (as numpy.arange).
Tensor arange(double start, double end, double step = 1, DType dtype = kFloat32);
Tensor arange(double end, DType dtype = kFloat32);
/// Copies `values` into a tensor of `shape` (default, or {}: 1-D as torch.tensor([...]); use
/// scalar_tensor for 0-d); throws when the sizes differ.
///   auto x = kiln::from_data({1.f, 2.f, 3.f, 4.f}, {2, 2});
Tensor from_data(const std::vector<float>& values, const Shape& shape = {});
Tensor from_data(const std::vector<double>& values, const Shape& shape = {});
Tensor from_data(const std::vector<std::int64_t>& values, const Shape& shape = {});
Tensor from_data(const std::vector<bool>& values, const Shape& shape = {});
Tensor from_data(std::initializer_list<float> values, const Shape& shape = {});
Tensor from_data(std::initializer_list<double> values, const Shape& shape = {});

/// Exact equality of dtype, shape and every element.
bool equal(const Tensor& a, const Tensor& b);
/// |a - b| <= atol + rtol * |b| elementwise, same shape required.
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8);
/// The largest |a - b| (shapes must match).
double max_abs_diff(const Tensor& a, const Tensor& b);

/// Prints like PyTorch: the values, then "[ float32 [2, 3] ]".
std::ostream& operator<<(std::ostream& os, const Tensor& t);
std::string to_string(const Tensor& t);

template <class T>
T* Tensor::data() {
  KILN_CHECK(defined(), "tensor: data() of an undefined tensor");
  KILN_CHECK(dtype_of<T>() == dtype_, "tensor: data<{}>() of a {} tensor", dtype_name(dtype_of<T>()),
             dtype_);
  return static_cast<T*>(storage_->data());
}

template <class T>
const T* Tensor::data() const {
  return const_cast<Tensor*>(this)->data<T>();
}

// bool tensors store one byte per element.
template <>
inline bool* Tensor::data<bool>() {
  KILN_CHECK(defined(), "tensor: data() of an undefined tensor");
  KILN_CHECK(dtype_ == DType::Bool, "tensor: data<bool>() of a {} tensor", dtype_);
  return static_cast<bool*>(storage_->data());
}

}  // namespace kiln

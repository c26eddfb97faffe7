#pragma once
// Tensor: a dense, contiguous, row-major array of one dtype. Copies share storage (like torch::Tensor);
// clone() makes a deep copy. Tensors carry no autograd state: see autograd/variable.hpp.
//
// Note [Views]: a tensor may cover a contiguous range of a larger storage (view_range), e.g. one
// direction's outputs inside a fused kernel's packed result, so taking them costs no copy. Such a
// view shares the storage: a write through either is seen by both (as torch's views), and use_count()
// counts both, so code that writes in place only when it holds the storage alone stays correct.

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
  void* raw_data() const { return storage_ ? static_cast<char*>(storage_->data()) + offset_ : nullptr; }

  /// The single element of a one-element tensor, converted to double.
  double item() const;
  /// All elements converted to double, in row-major order.
  std::vector<double> to_vector() const;

  /// Same storage, new shape (one dim may be -1). Throws naming both shapes when sizes differ.
  Tensor reshape(const std::vector<std::int64_t>& shape) const;
  /// A tensor of `shape` over elements [offset, offset + shape.numel()) of this one, sharing its
  /// storage (Note [Views]). Throws naming both shapes when the range does not fit.
  Tensor view_range(std::int64_t offset, const Shape& shape) const;
  Tensor clone() const;
  /// A copy converted to `dtype` (the same tensor when it already has that dtype).
  Tensor to(DType dtype) const;
  /// Fills every element with `value` in place.
  Tensor& fill_(double value);

  /// How many tensors share this storage (1 means this one owns it alone).
  long use_count() const { return storage_.use_count(); }
  /// Whether both see the same elements from the same start (copies and reshapes of one another).
  bool is_same(const Tensor& other) const { return storage_ == other.storage_ && offset_ == other.offset_; }

 private:
  std::shared_ptr<Storage> storage_;
  std::size_t offset_ = 0;  // bytes from the storage's start (Note [Views])
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
  return static_cast<T*>(raw_data());
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
  return static_cast<bool*>(raw_data());
}

}  // namespace kiln

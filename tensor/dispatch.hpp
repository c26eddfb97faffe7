#pragma once
// Dtype dispatch for kernels: calls `f` with a value of the C++ element type.
//   dispatch_float(t.dtype(), "tanh", [&](auto tag) { using T = decltype(tag); ... });

#include <cstdint>

#include "tensor/dtype.hpp"
#include "tensor/error.hpp"

namespace kiln {

template <class F>
decltype(auto) dispatch_float(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::Float32: return f(float{});
    case DType::Float64: return f(double{});
    default: break;
  }
  throw Error(fmt::format("{}: expected a float32 or float64 tensor, got {}", op, dtype));
}

template <class F>
decltype(auto) dispatch_all(DType dtype, F&& f) {
  switch (dtype) {
    case DType::Float32: return f(float{});
    case DType::Float64: return f(double{});
    case DType::Int64: return f(std::int64_t{});
    case DType::Bool: return f(bool{});
  }
  throw Error("dispatch: unknown dtype");
}

}  // namespace kiln

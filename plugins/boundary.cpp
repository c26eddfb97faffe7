#include "plugins/boundary.hpp"

#include <cstring>

#include "tensor/error.hpp"

namespace kiln::plugins {

Tensor kernel_buffer(std::size_t bytes, const std::string& who, const char* what) {
  constexpr std::size_t kElement = sizeof(double);
  const std::size_t most = static_cast<std::size_t>(Shape::kMaxElements) * kElement;
  KILN_CHECK(bytes <= most, "{}: {} asks for {} bytes, more than any tensor can hold", who, what, bytes);
  try {
    return Tensor({static_cast<std::int64_t>((bytes + kElement - 1) / kElement)}, kFloat64);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {} asks for {} bytes: {}", who, what, bytes, e.what()));
  }
}

std::string kernel_text(const char* buffer, std::size_t size) {
  std::string text(buffer, ::strnlen(buffer, size));
  for (char& c : text)
    if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') c = '?';
  return text;
}

}  // namespace kiln::plugins

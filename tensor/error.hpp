#pragma once
// kiln::Error and the KILN_CHECK macro: every failure names the op or layer and the offending values.

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace kiln {

/// The one exception type Kiln throws. `what()` reads "op: what went wrong (values)".
///   try { kiln::add(a, b); } catch (const kiln::Error& e) { std::cerr << e.what(); }
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace kiln

/// Throws kiln::Error with an fmt-formatted message when `cond` is false:
///   KILN_CHECK(a.rank() == 2, "matmul: expected a 2-D matrix, got shape {}", a);
#define KILN_CHECK(cond, ...)                                \
  do {                                                       \
    if (!(cond)) throw ::kiln::Error(fmt::format(__VA_ARGS__)); \
  } while (0)

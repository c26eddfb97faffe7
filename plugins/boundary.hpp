#pragma once
// Internal: what a kernel hands back across the C interface, taken as untrusted.
//
// Note [Plugin answers]: a kernel's saved_bytes and work_bytes are sizes Kiln allocates, and its why and
// err buffers are text Kiln prints. A kernel with a bug (or a hostile one) can answer SIZE_MAX, which
// rounded up to whole float64 elements wraps to a zero-length buffer the kernel then writes past, or
// fill a message buffer to the end without a terminating NUL. kernel_buffer refuses a size no tensor can
// have, naming the kernel and what it asked for; kernel_text reads at most the buffer's size.

#include <cstddef>
#include <string>

#include "tensor/tensor.hpp"

namespace kiln::plugins {

/// A buffer of at least `bytes` bytes for a kernel, 64-byte aligned. `who` names the kernel and its
/// plugin, `what` the request ("saved_bytes"); throws kiln::Error with both when it cannot be had.
Tensor kernel_buffer(std::size_t bytes, const std::string& who, const char* what);

/// The text a kernel wrote into `buffer` (`size` bytes), up to its NUL or the buffer's end, with
/// control characters shown as '?'.
std::string kernel_text(const char* buffer, std::size_t size);

}  // namespace kiln::plugins

#pragma once
// Files are written atomically: to a temporary beside the target, flushed, then renamed over it, so
// a crash or a full disk never leaves a half-written file under the real name.

#include <cstddef>
#include <string>
#include <string_view>

namespace kiln::io {

/// Writes `content` to `path` atomically; throws kiln::Error naming the path and the OS error.
void write_file_atomic(const std::string& path, std::string_view content);

/// Checks now that write_file_atomic(path, ...) could write later (its folder exists and takes a new
/// file; a directory is not a file), so a long job does not end in an unwritable output; throws
/// kiln::Error naming the path and the OS error. Leaves nothing behind.
void check_writable(const std::string& path);

/// Reads a whole file; throws kiln::Error naming the path when it cannot, when it is not a regular
/// file (a device or a FIFO would be read forever), or when it holds more than `max_bytes`.
std::string read_file(const std::string& path, std::size_t max_bytes = ~std::size_t{0});

}  // namespace kiln::io

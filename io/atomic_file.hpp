#pragma once
// Files are written atomically: to a temporary beside the target, flushed, then renamed over it, so
// a crash or a full disk never leaves a half-written file under the real name.

#include <string>
#include <string_view>

namespace kiln::io {

/// Writes `content` to `path` atomically; throws kiln::Error naming the path and the OS error.
void write_file_atomic(const std::string& path, std::string_view content);

/// Reads a whole file; throws kiln::Error naming the path when it cannot.
std::string read_file(const std::string& path);

}  // namespace kiln::io

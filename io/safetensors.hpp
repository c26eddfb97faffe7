#pragma once
// safetensors: the checkpoint format PyTorch and Hugging Face users already use (numpy reads it too).
// Layout: an 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32"|"F64"|"I64"|"U8"|"BOOL", "shape": [...], "data_offsets": [begin, end]},
//    "__metadata__": {"key": "value"}}
// then the raw little-endian tensor data, offsets relative to its start.
//
// Note [Untrusted files]: a checkpoint is input. Loading checks the header length against the file
// size, parses the JSON, and checks every entry's dtype, shape, offsets and size (with overflow-safe
// arithmetic) and that the entries tile the data section exactly, before copying a byte. A truncated,
// garbled or hostile file is refused with a kiln::Error naming the file and the offending entry;
// nothing is allocated beyond the file's own size.

#include <map>
#include <string>

#include "tensor/tensor.hpp"

namespace kiln::io {

struct Safetensors {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

/// Reads and validates a safetensors file.
Safetensors load_safetensors(const std::string& path);
/// Parses safetensors bytes; `source` names them in error messages.
Safetensors parse_safetensors(const std::string& bytes, const std::string& source);

/// Writes tensors (float32, float64, int64, bool) and string metadata atomically.
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
/// The bytes save_safetensors would write.
std::string serialize_safetensors(const std::map<std::string, Tensor>& tensors,
                                  const std::map<std::string, std::string>& metadata = {});

}  // namespace kiln::io

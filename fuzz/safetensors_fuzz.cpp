// Fuzz target: the safetensors loader (Note [Untrusted files], io/safetensors.hpp). Any bytes are
// either refused with a kiln::Error or read into tensors that save and read back bit for bit.

#include <cstdint>
#include <cstring>
#include <string>

#include "fuzz/fuzz_target.hpp"
#include "io/safetensors.hpp"
#include "tensor/error.hpp"

namespace {

bool same_bits(const kiln::Tensor& a, const kiln::Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && a.nbytes() == b.nbytes() &&
         (a.nbytes() == 0 || std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kiln::fuzz::bound_kiln();
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  kiln::io::Safetensors file;
  try {
    file = kiln::io::parse_safetensors(bytes, "input.safetensors");
  } catch (const kiln::Error&) {
    return 0;  // refused, as it should be
  }
  kiln::io::Safetensors again;
  try {
    again = kiln::io::parse_safetensors(kiln::io::serialize_safetensors(file.tensors, file.metadata), "saved again");
  } catch (const kiln::Error& e) {
    KILN_FUZZ_EXPECT(false, e.what());  // Kiln must read back whatever it accepted and saved
  }
  KILN_FUZZ_EXPECT(again.metadata == file.metadata, "metadata changed on a round trip");
  KILN_FUZZ_EXPECT(again.tensors.size() == file.tensors.size(), "a tensor was lost on a round trip");
  for (const auto& [name, t] : file.tensors) {
    const auto it = again.tensors.find(name);
    KILN_FUZZ_EXPECT(it != again.tensors.end() && same_bits(t, it->second), name.c_str());
  }
  return 0;
}

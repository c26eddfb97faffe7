// Fuzz target: the reference-case reader behind `kiln compare` (interop/reference_case.hpp). A case is a
// safetensors file whose metadata builds a module (sizes, flags, cell names) and whose tensors feed it;
// any bytes must run (to a report, matching or not) or be refused with a kiln::Error. Each input runs
// twice: float64 on the generic graph and float32 with the layers' own choice of kernel.

#include <cstdint>
#include <string>

#include "fuzz/fuzz_target.hpp"
#include "interop/reference_case.hpp"
#include "io/safetensors.hpp"
#include "tensor/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kiln::fuzz::bound_kiln();
  kiln::io::Safetensors file;
  try {
    file = kiln::io::parse_safetensors(std::string(reinterpret_cast<const char*>(data), size), "case.safetensors");
  } catch (const kiln::Error&) {
    return 0;
  }
  for (const auto& [dtype, impl] : {std::pair{kiln::kFloat64, "generic"}, std::pair{kiln::kFloat32, "auto"}}) {
    try {
      const kiln::interop::CaseReport report = kiln::interop::run_reference_case(file, "case.safetensors", dtype, impl);
      for (const auto& row : report.rows) KILN_FUZZ_EXPECT(!row.name.empty(), "a comparison row without a name");
    } catch (const kiln::Error&) {
    }
  }
  return 0;
}

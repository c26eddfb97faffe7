#pragma once
// Whether the plugin SDK's SIMD code (kiln/lanes.hpp, kiln/packed_gemm.hpp) runs on xsimd batches
// (header-only; used when installed, with the plugin's own compiler flags choosing the instruction set)
// or on plain loops: KILN_SDK_HAS_XSIMD is 1 or 0.

#if __has_include(<xsimd/xsimd.hpp>)
#include <xsimd/xsimd.hpp>
#define KILN_SDK_HAS_XSIMD 1
#else
#define KILN_SDK_HAS_XSIMD 0
#endif

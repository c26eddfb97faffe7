# Compiler-wide settings. Note [One ABI]: -march=native and XTENSOR_USE_XSIMD change the type of
# xt::xarray and the vector width of every inlined xtensor kernel, so they are set once, here, for
# every target, never per target.

find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM)
  set(CMAKE_CXX_COMPILER_LAUNCHER "${CCACHE_PROGRAM}")
endif()

if(KILN_NATIVE)
  add_compile_options(-march=native)
endif()

# Note [GCC 12 SLP miscompile]: with AVX-512 enabled, GCC 12's straight-line (SLP) vectoriser
# builds the initializer list {x, x, 0, 0} of doubles as {x, x, x, x} (seen at -O2 and -O3 with
# -march=native on Zen 5 and with -march=x86-64-v4). Loop vectorisation and xsimd's explicit
# intrinsics are unaffected, so only SLP is turned off. tests/toolchain/compiler_test.cpp pins it.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  add_compile_options(-fno-tree-slp-vectorize)
endif()

# Tests and examples must never run xtensor at -O0 (about 100x slower).
if(CMAKE_BUILD_TYPE STREQUAL "Debug")
  add_compile_options(-O1)
endif()

# Note [Sanitizer build size]: with full debug info (-g) every sanitized test and example binary
# carried its own ~300 MB copy of libkiln's DWARF, 5 GB a build; a CI run once failed with the
# disk full. Line tables (-g1) are all a sanitizer report needs to name file:line.
if(KILN_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g1)
  add_link_options(-fsanitize=address,undefined -fno-sanitize-recover=all)
endif()

# Fuzzing (scripts/fuzz.sh): everything instrumented for libFuzzer's coverage and the sanitizers; only
# the fuzz targets link libFuzzer itself (-fsanitize=fuzzer, fuzz/CMakeLists.txt). -O1: the inputs are
# small, and the whole library builds in about half the time it takes at -O2.
# float-cast-overflow is left out: xsimd's exp and log turn every lane into an integer exponent, NaN and
# out-of-range lanes included (through std::copy in its generic batch_cast, out of reach of a suppression
# file), then select those lanes away: undefined in C++, defined on x86 (INT64_MIN), and discarded. The
# first minute of fuzzing found it (fuzz/corpus/reference_case/exp_of_huge_value). Kiln's own float-to-
# integer conversions check their range instead (Note [Float to integer], tensor/tensor.cpp).
if(KILN_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "KILN_FUZZ needs clang for libFuzzer (configure with CXX=clang++-14), not ${CMAKE_CXX_COMPILER_ID}")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize=float-cast-overflow -fno-sanitize-recover=all
                      -fno-omit-frame-pointer -g1 -O1)
  add_link_options(-fsanitize=address,undefined)
endif()

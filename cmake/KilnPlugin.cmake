# The plugin SDK's CMake function. A plugin sees only the SDK headers (kiln/plugin.h, plain C, and the
# header-only kiln/recurrent_kernel.hpp): it does not link Kiln and need not share its compiler flags.
#
#   include(/path/to/kiln/cmake/KilnPlugin.cmake)
#   kiln_add_plugin(my_kernels SOURCES my_kernels.cpp)     # -> my_kernels.so
#
# Load the result with kiln::plugins::load_plugin("path/my_kernels.so"), KILN_PLUGINS=path/my_kernels.so,
# and check it with `kiln check-plugin path/my_kernels.so`.

set(KILN_PLUGIN_SDK_DIR "${CMAKE_CURRENT_LIST_DIR}/../plugins/sdk" CACHE PATH "Kiln's plugin SDK headers")
# Only C crosses the plugin boundary (kiln/plugin.h), so a plugin may pick its own instruction set: built
# on its own it targets this machine, so the SDK's SIMD helpers (kiln/lanes.hpp, kiln/packed_gemm.hpp)
# use its widest vectors. Inside Kiln's build it takes Kiln's choice (KILN_NATIVE).
if(DEFINED KILN_NATIVE)
  set(KILN_PLUGIN_NATIVE ${KILN_NATIVE} CACHE BOOL "Compile plugins for this machine's CPU (-march=native)")
else()
  option(KILN_PLUGIN_NATIVE "Compile plugins for this machine's CPU (-march=native)" ON)
endif()

function(kiln_add_plugin name)
  cmake_parse_arguments(ARG "" "" "SOURCES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "kiln_add_plugin(${name}): give the plugin's SOURCES")
  endif()
  add_library(${name} MODULE ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE "${KILN_PLUGIN_SDK_DIR}")
  target_compile_features(${name} PRIVATE cxx_std_17)
  set_target_properties(${name} PROPERTIES PREFIX "" CXX_VISIBILITY_PRESET hidden C_VISIBILITY_PRESET hidden
                                           VISIBILITY_INLINES_HIDDEN ON)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${name} PRIVATE -O2 -Wall -Wextra)
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")  # g++ 12 warns inside its own AVX-512 intrinsics as xsimd uses them
      target_compile_options(${name} PRIVATE -Wno-maybe-uninitialized)
    endif()
    if(KILN_PLUGIN_NATIVE AND NOT KILN_NATIVE)  # Kiln's own build sets -march=native once, for every target
      target_compile_options(${name} PRIVATE -march=native)
    endif()
  endif()
endfunction()

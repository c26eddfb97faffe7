# The plugin SDK's CMake function, inside Kiln's build and from an installed Kiln (find_package(kiln)).
#
#   kiln_add_plugin(my_kernels SOURCES my_kernels.cpp)          # -> my_kernels.so
#   kiln_add_plugin(my_cells CELLS SOURCES my_cells.cpp)        # also registers cells: links kiln::kiln
#
# A kernel-only plugin sees only the SDK headers (kiln/plugin.h, plain C, and the header-only
# kiln/recurrent_kernel.hpp): it does not link Kiln and need not share its compiler flags. A plugin that
# registers generic cells (CELLS, KILN_REGISTER_CELLS) is C++ against Kiln's own classes, so it links
# kiln::kiln and is built as Kiln was (Note [One ABI]). Load the result with --load, KILN_PLUGINS or
# kiln::plugins::load_plugin("path/my_kernels.so"); check its kernels with `kiln check-plugin path.so`.

if(NOT DEFINED KILN_PLUGIN_SDK_DIR)
  set(KILN_PLUGIN_SDK_DIR "${CMAKE_CURRENT_LIST_DIR}/../plugins/sdk" CACHE PATH "Kiln's plugin SDK headers")
endif()
# Only C crosses the plugin boundary (kiln/plugin.h), so a plugin may pick its own instruction set: built
# apart from Kiln it targets this machine, so the SDK's SIMD helpers (kiln/lanes.hpp, kiln/packed_gemm.hpp)
# use its widest vectors. Inside Kiln's build it takes Kiln's choice, which sets -march=native once.
if(KILN_INSIDE_BUILD)
  set(KILN_PLUGIN_NATIVE OFF)
else()
  option(KILN_PLUGIN_NATIVE "Compile plugins for this machine's CPU (-march=native)" ON)
endif()

function(kiln_add_plugin name)
  cmake_parse_arguments(ARG "CELLS" "" "SOURCES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "kiln_add_plugin(${name}): give the plugin's SOURCES")
  endif()
  add_library(${name} MODULE ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE "${KILN_PLUGIN_SDK_DIR}")
  target_compile_features(${name} PRIVATE cxx_std_17)
  set_target_properties(${name} PROPERTIES PREFIX "" CXX_VISIBILITY_PRESET hidden C_VISIBILITY_PRESET hidden
                                           VISIBILITY_INLINES_HIDDEN ON)
  if(ARG_CELLS)
    if(NOT TARGET kiln::kiln)
      message(FATAL_ERROR "kiln_add_plugin(${name} CELLS): a cell plugin links Kiln; find_package(kiln) first")
    endif()
    target_link_libraries(${name} PRIVATE kiln::kiln)
  endif()
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${name} PRIVATE -O2 -Wall -Wextra)
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")  # g++ 12 warns inside its own AVX-512 intrinsics as xsimd uses them
      target_compile_options(${name} PRIVATE -Wno-maybe-uninitialized)
    endif()
    if(KILN_PLUGIN_NATIVE)
      target_compile_options(${name} PRIVATE -march=native)
    endif()
  endif()
endfunction()

# Every dependency comes from a Debian package and is found with find_package (scripts/setup.sh
# installs them).

set(XTENSOR_USE_XSIMD ON)  # must precede find_package(xtensor): see Note [One ABI]
find_package(xsimd REQUIRED)
find_package(xtl REQUIRED)
find_package(xtensor REQUIRED)
find_package(xtensor-blas REQUIRED)
find_package(BLAS REQUIRED)
find_package(Boost 1.74 REQUIRED COMPONENTS graph)
find_package(yaml-cpp REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(fmt REQUIRED)
find_package(CLI11 REQUIRED)
find_package(Threads REQUIRED)
if(KILN_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(KILN_BUILD_BENCHMARKS)
  find_package(benchmark REQUIRED)
endif()

# OpenBLAS's own cblas.h and openblas_* controls (thread count, core name).
find_path(OPENBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas-pthread openblas REQUIRED)
find_library(OPENBLAS_LIBRARY NAMES openblas REQUIRED)

# Every translation unit sees the same xtensor configuration (Note [One ABI]).
add_compile_definitions(XTENSOR_USE_XSIMD)

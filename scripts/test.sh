#!/usr/bin/env bash
# Quick start, the tests: installs dependencies, builds, and runs every test.
# KILN_SANITIZE=1 builds into build-asan/ with AddressSanitizer + UBSan and runs the suite there.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
if [ "${KILN_SANITIZE:-0}" = 1 ]; then
  export KILN_BUILD_DIR="${KILN_BUILD_DIR:-$root/build-asan}" KILN_BUILD_TYPE=RelWithDebInfo
  # libkiln as a shared library here: one instrumented copy instead of one in each of ~20 binaries
  # (Note [Sanitizer build size], cmake/KilnToolchain.cmake).
  bash "$root/scripts/build.sh" -DKILN_SANITIZE=ON -DKILN_BUILD_BENCHMARKS=OFF -DBUILD_SHARED_LIBS=ON
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:allocator_may_return_null=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  export LSAN_OPTIONS="suppressions=$root/scripts/lsan.supp"  # Open MPI's runtime, not Kiln's
else
  bash "$root/scripts/build.sh"
fi
ctest --test-dir "${KILN_BUILD_DIR:-$root/build}" --no-tests=error --output-on-failure -j "$(nproc)"

#!/usr/bin/env bash
# Builds and runs the core benchmarks under both OpenBLAS kernels: the one OpenBLAS picks for this
# CPU (OPENBLAS_CORETYPE unset) and the Haswell (AVX2) kernel this environment forces by default.
# OpenBLAS reads OPENBLAS_CORETYPE when it loads, so each setting is its own process; every ratio is
# measured within one process. Extra arguments go to the benchmark program.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh"
bench="${KILN_BUILD_DIR:-$root/build}/benchmarks/kiln_bench_core"
echo "== OPENBLAS_CORETYPE unset (OpenBLAS picks its kernel) =="
env -u OPENBLAS_CORETYPE "$bench" "$@"
echo
echo "== OPENBLAS_CORETYPE=Haswell =="
OPENBLAS_CORETYPE=Haswell "$bench" "$@"

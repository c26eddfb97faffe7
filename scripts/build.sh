#!/usr/bin/env bash
# Configures and builds Kiln into build/ (or $KILN_BUILD_DIR). Extra arguments go to cmake's configure step.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${KILN_BUILD_DIR:-$root/build}"
export CCACHE_BASEDIR="$root"   # lets a fresh clone hit the cache of an earlier one
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE="${KILN_BUILD_TYPE:-Release}" "$@" >/dev/null
cmake --build "$build" -j "${KILN_JOBS:-$(nproc)}"

#!/usr/bin/env bash
# Installs Kiln's build dependencies from Debian packages. Idempotent: does nothing when all are present.
# `setup.sh fuzz` adds clang and its runtimes for the libFuzzer targets (scripts/fuzz.sh).
set -euo pipefail
packages=(
  g++ cmake make ccache pkg-config
  libxtensor-dev libxsimd-dev xtl-dev libxtensor-blas-dev
  libopenblas-dev libopenblas-pthread-dev liblapack-dev
  libboost-graph-dev libyaml-cpp-dev nlohmann-json3-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  fortunes-min fortunes libcsv-dev
  chromium  # the reports tested in a browser (tests/report/chromium_test.sh)
  libopenmpi-dev openmpi-bin  # data-parallel training and distributed sweeps (dist/)
)
if [ "${1:-}" = fuzz ]; then
  packages+=(clang-14 libclang-rt-14-dev)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi
echo "setup: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"

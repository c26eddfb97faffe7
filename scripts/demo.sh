#!/usr/bin/env bash
# Quick start, the main job: installs dependencies, builds, and runs the demo.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh"
"${KILN_BUILD_DIR:-$root/build}/kiln" demo "$@"

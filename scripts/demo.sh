#!/usr/bin/env bash
# Quick start, the main job: installs dependencies, builds, and trains the shipped experiment
# configs/char_lm_fortunes.yaml (a character LSTM over Debian's fortunes, under a minute on two cores).
# Arguments go to `kiln train`, e.g. --set train.steps=500.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh"
"${KILN_BUILD_DIR:-$root/build}/kiln" train "$root/configs/char_lm_fortunes.yaml" "$@"

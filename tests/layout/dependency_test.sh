#!/usr/bin/env bash
# Every dependency arrow of the library's source tree points down: a folder includes only its own
# headers and those of folders below it in this order (the SDK's "kiln/..." headers belong to plugins/).
# A folder listed on one line with another may not include it either.
#   dependency_test.sh SOURCE_DIR
set -euo pipefail
cd "$1"
layers=(
  "tensor"
  "io"
  "autograd"
  "ops"
  "optim plugins"   # optimisers; the kernel runtime (C ABI, SDK, registry, loader, built-in kernels)
  "layers"          # modules, cells, the cell registry
  "fusion"          # cells meet kernels: kernel choice, graph pass, tape nodes, check_plugin
  "sequence"        # recurrent layers over time, attention, Transformer
  "seq2seq"
  "dist report"     # MPI collectives and data-parallel training; SVG figures and HTML pages
  "interop bench experiment"  # tools of the kiln program, not part of the library
  "cli"
)
declare -A rank
for i in "${!layers[@]}"; do
  for folder in ${layers[$i]}; do rank[$folder]=$i; done
done
rank[kiln]=${rank[plugins]}  # plugins/sdk/kiln/...
bad=0
for folder in "${!rank[@]}"; do
  [ "$folder" = kiln ] && continue
  [ -d "$folder" ] || { echo "missing folder $folder"; bad=1; continue; }
  while IFS= read -r line; do
    file=${line%%:*}
    target=$(sed -E 's/.*#include "([a-z0-9_]+)\/.*/\1/' <<<"$line")
    [ -n "${rank[$target]+x}" ] || continue
    if [ "$target" != "$folder" ] && ! { [ "$folder" = plugins ] && [ "$target" = kiln ]; } && [ "${rank[$target]}" -ge "${rank[$folder]}" ]; then
      echo "upward or sideways arrow: $file includes $target/ (${layers[${rank[$target]}]}), which is not below $folder/"
      bad=1
    fi
  done < <(grep -rnE '#include "[a-z0-9_]+/' "$folder" --include=*.cpp --include=*.hpp --include=*.h || true)
done
# The library itself must not be built from the tools' folders.
for tool in interop bench experiment cli; do
  if grep -q "target_sources(kiln " "$tool/CMakeLists.txt"; then echo "libkiln is built from $tool/, a tool of the kiln program"; bad=1; fi
done
[ "$bad" = 0 ] && echo "dependency arrows: all point down (${#rank[@]} folders)"
exit "$bad"

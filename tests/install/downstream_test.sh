#!/usr/bin/env bash
# Installs Kiln from BUILD into a fresh prefix, then builds and runs a project outside the tree against
# it, as a user would: examples/downstream (its own cell, layer and plugin) with find_package(kiln), and
# a one-file program with pkg-config. Checks that the downstream build compiles only its own sources,
# that the installed kiln program proves, benchmarks and finds the plugin's kernel, and that Kiln's
# headers raise no warnings in a user's -Wall -Wextra build.
#   downstream_test.sh SOURCE_DIR BUILD_DIR WORK_DIR
set -euo pipefail
src="$1" build="$2" work="$3"
rm -rf "$work" && mkdir -p "$work"
prefix="$work/prefix"
export CCACHE_DISABLE=1

cmake --install "$build" --prefix "$prefix" >/dev/null
test -f "$prefix/include/kiln/kiln.hpp" && test -f "$prefix/include/kiln/plugin.h" && test -f "$prefix/lib/cmake/kiln/kilnConfig.cmake"
echo "installed into $prefix"

# The project lives outside Kiln's tree, as a user's would.
cp -r "$src/examples/downstream" "$work/project"
start=$SECONDS
cmake -S "$work/project" -B "$work/build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS="-Wall -Wextra" >/dev/null
cmake --build "$work/build" -j 2 >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
compiled=$(grep -c "Building CXX object" "$work/build.log" || true)
echo "downstream build: $compiled files compiled in $((SECONDS - start)) s"
if [ "$compiled" -ne 5 ]; then echo "expected the project's own 5 files, no more"; cat "$work/build.log"; exit 1; fi
if grep -q "warning:" "$work/build.log"; then echo "Kiln's headers warn in a user's build:"; grep -A3 "warning:" "$work/build.log"; exit 1; fi

"$work/build/cifg_adding" --steps 300 | tee "$work/run.log"
grep -q "graph pass: MyCIFGCell's step .* matched kernel 'cifg' from plugin 'cifg_example'" "$work/run.log"
grep -q "the CIFG layer runs on CIFGCell claims kernel 'cifg'" "$work/run.log"

kiln="$prefix/bin/kiln"
"$kiln" check-plugin "$work/build/kiln_cifg.so" | tee "$work/check.log"
grep -Eq "cifg +cifg_example +PASS" "$work/check.log"
"$kiln" bench --cell cifg --load "$work/build/kiln_cifg.so" --config b --threads 1 --impl generic,fused --min-time 0 | tee "$work/bench.log"
grep -Eq "cifg +b +1 fused" "$work/bench.log"
# (Into files first: grep -q stops reading at its match, and the writer's SIGPIPE would fail the pipe.)
"$kiln" plugins --load "$work/build/kiln_cifg.so" > "$work/plugins.txt"
grep -q "cifg .*CIFGCell" "$work/plugins.txt"
KILN_PLUGINS="$work/build/kiln_cifg.so" "$kiln" plugins > "$work/plugins_env.txt"
grep -Eq "^  cifg +3 +2 +cifg +$work/build/kiln_cifg.so" "$work/plugins_env.txt"

# pkg-config, for builds without CMake.
cat >"$work/hello.cpp" <<'CPP'
#include <kiln/kiln.hpp>
int main() {
  kiln::nn::LSTM lstm(kiln::nn::LSTMOptions(3, 4));
  const auto r = lstm.forward(kiln::Variable(kiln::randn({5, 2, 3})), {});
  std::printf("%s %s\n", r.output.shape().str().c_str(), lstm.uses_fused() ? "fused" : "generic");
  return r.output.size(2) == 4 ? 0 : 1;
}
CPP
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
g++ -Wall -Wextra -O1 "$work/hello.cpp" -o "$work/hello" $(pkg-config --cflags --libs kiln)
"$work/hello" | grep "\[5, 2, 4\] fused" > /dev/null
# The Debian package holds the same install.
(cd "$build" && cpack -G DEB -B "$work/package" >/dev/null)
deb=$(ls "$work"/package/kiln_*.deb)
dpkg-deb -c "$deb" >"$work/deb.txt"
for f in usr/include/kiln/kiln.hpp usr/include/kiln/plugin.h usr/lib/libkiln.so usr/bin/kiln usr/lib/cmake/kiln/kilnConfig.cmake usr/lib/pkgconfig/kiln.pc; do
  grep -q "\./$f" "$work/deb.txt" || { echo "$deb lacks $f"; exit 1; }
done
echo "package: $(basename "$deb")"
echo "downstream: all passed"

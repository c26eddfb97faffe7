#!/usr/bin/env bash
# Fuzzing: builds Kiln's libFuzzer targets (fuzz/) with clang under ASan + UBSan into build-fuzz/ and
# runs each for SECONDS (default 60), starting from the checked-in corpus. Any finding (a crash, a
# sanitizer report, an uncaught exception, a broken promise, a timeout, a leak or running out of
# memory) fails the run and is left in build-fuzz/findings/TARGET/ with the command that replays it.
# New inputs that reach new code collect in build-fuzz/corpus/TARGET/ across runs.
#   bash scripts/fuzz.sh                 # every target, 60 s each (CI)
#   bash scripts/fuzz.sh 3600 safetensors  # a release's longer run of one target
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors reference_case plugin_descriptor experiment)
case "$seconds" in '' | *[!0-9]*) echo "fuzz: SECONDS must be a whole number, got '$seconds'" >&2; exit 2 ;; esac

bash "$root/scripts/setup.sh" fuzz
build="${KILN_FUZZ_BUILD_DIR:-$root/build-fuzz}"
export CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=true
CXX=clang++-14 cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DKILN_FUZZ=ON -DKILN_BUILD_TESTS=OFF \
  -DKILN_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$build" -j "${KILN_JOBS:-$(nproc)}" --target "${targets[@]/#/fuzz_}"

export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
failed=()
for t in "${targets[@]}"; do
  work="$build/corpus/$t" findings="$build/findings/$t"
  mkdir -p "$work" "$findings"
  seeds=("$root/fuzz/corpus/$t")
  [ "$t" = reference_case ] && seeds+=("$root/tests/golden/pytorch")
  [ "$t" = experiment ] && seeds+=("$root/configs")
  dict=()
  case "$t" in
    safetensors | reference_case) dict=(-dict="$root/fuzz/safetensors.dict") ;;
    experiment) dict=(-dict="$root/fuzz/experiment.dict") ;;
  esac
  echo "fuzz: $t for $seconds s"
  if ! "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$findings/" "${dict[@]}" "$work" "${seeds[@]}" >"$findings/log" 2>&1; then
    tail -n 60 "$findings/log"
    echo "fuzz: $t FOUND A PROBLEM; its input is in $findings/; replay it with $build/fuzz/fuzz_$t FILE," \
         "then add it to fuzz/corpus/$t/ with a test"
    failed+=("$t")
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$findings/log" | tr '\n' ' '
    echo
  fi
done
[ ${#failed[@]} -eq 0 ] || { echo "fuzz: findings in ${failed[*]}"; exit 1; }
echo "fuzz: no findings in ${targets[*]}"

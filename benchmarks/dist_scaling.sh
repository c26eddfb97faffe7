#!/usr/bin/env bash
# Data-parallel scaling here: `kiln bench-dist` alone (1 rank x 1 thread) and under `mpirun -np 2`
# (2 ranks x 1 thread, each on its own core), alternately ROUNDS times, on the LSTM (a) training step with
# the batch per rank fixed (the global batch doubles): sequences/s, the all-reduce's share of a step,
# bytes reduced per step, and the ratio of the two throughputs (target: at least 1.8).
#   benchmarks/dist_scaling.sh [KILN] [ROUNDS] [CONFIG]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kiln="${1:-$root/build/kiln}" rounds="${2:-3}" config="${3:-a}"
source "$root/benchmarks/dist_env.sh"
for r in $(seq "$rounds"); do
  "$kiln" bench-dist --config "$config" --steps 20 --json "$out/one_$r.json"
  mpirun -np 2 --bind-to core -x OPENBLAS_NUM_THREADS "$kiln" bench-dist --config "$config" --steps 20 --json "$out/two_$r.json"
done
python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
one = [json.load(open(f"{out}/one_{r}.json")) for r in range(1, rounds + 1)]
two = [json.load(open(f"{out}/two_{r}.json")) for r in range(1, rounds + 1)]
s1 = statistics.median(j["sequences_per_second"] for j in one)
s2 = statistics.median(j["sequences_per_second"] for j in two)
comm = statistics.median(j["allreduce_ms"] / j["ms_per_step"] for j in two)
print(f"1 rank: {s1:.0f} sequences/s; 2 ranks: {s2:.0f} sequences/s; scaling {s2 / s1:.2f}x "
      f"(all-reduce {comm:.1%} of a step, {two[0]['bytes_per_step'] / 1e6:.2f} MB per step); medians of {rounds} rounds")
PY

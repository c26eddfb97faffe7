#!/usr/bin/env bash
# Overlap of the gradients' all-reduce with backward (Note [Gradient buckets], Note [MPI progress]):
# `kiln bench-dist` under `mpirun -np 2` (2 ranks x 1 thread) with --overlap true and false, alternately
# ROUNDS times, on a layer with more than one layer of parameters (LSTM (d): two bidirectional layers, so
# the second layer's buckets can go while the first layer's backward runs). Reports the medians of the
# time each step waits for the sums after backward, the window in which buckets overlapped backward, and
# sequences/s.
#   benchmarks/dist_overlap.sh [KILN] [ROUNDS] [CONFIG] [BUCKET_MB]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kiln="${1:-$root/build/kiln}" rounds="${2:-3}" config="${3:-d}" bucket="${4:-4}"
source "$root/benchmarks/dist_env.sh"
for r in $(seq "$rounds"); do
  for o in true false; do
    mpirun -np 2 --bind-to core -x OPENBLAS_NUM_THREADS "$kiln" bench-dist --config "$config" --steps 20 --bucket-mb "$bucket" \
      --overlap "$o" --json "$out/${o}_$r.json" > /dev/null
  done
done
python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
for o in ("true", "false"):
    runs = [json.load(open(f"{out}/{o}_{r}.json")) for r in range(1, rounds + 1)]
    med = lambda k: statistics.median(j[k] for j in runs)
    print(f"overlap {'on ' if o == 'true' else 'off'}: waiting after backward {med('allreduce_ms'):.2f} ms of {med('ms_per_step'):.1f} ms "
          f"a step; {med('sequences_per_second'):.0f} sequences/s; {runs[0]['buckets']} buckets of {runs[0]['bytes_per_step'] / 1e6:.2f} MB, "
          f"{med('buckets_started_during_backward'):.1f} started during backward, the first {med('overlap_window_ms'):.1f} ms before its end")
print(f"medians of {rounds} rounds")
PY

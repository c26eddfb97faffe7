#!/usr/bin/env bash
# `mpirun -np 3 kiln sweep` (Note [Distributed sweeps]): the runs are spread over the ranks as they ask,
# rank 0 writes the same table a local sweep writes (each run is the same process alone, so the same
# numbers), and failed runs are rows of it.
#   sweep_test.sh KILN SOURCE_DIR MPIRUN
set -euo pipefail
kiln="$1" src="$2" mpirun="$3"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
grid() {
  cat <<YAML
output: $1
parallel: 1
experiments: {adding: $src/configs/greff/adding.yaml}
grid:
  model[*].recurrent.cell: [peephole_lstm, lstm_cifg]
  train.optimizer.lr: [0.01, 100]
  seed: [1, 2]
set: {train: {steps: 30, eval_every: 10, checkpoint_every: 10, clip_grad_norm: 0, optimizer.name: sgd}, data.batch: 8, instruments.every: 0}
YAML
}
grid "$work/local" > "$work/local.yaml"
grid "$work/dist" > "$work/dist.yaml"
timeout -k 10 300 "$kiln" sweep "$work/local.yaml" > "$work/local.out" 2>&1 && fail "failed runs, exit 0"
timeout -k 10 300 "$mpirun" -np 3 "$kiln" sweep "$work/dist.yaml" > "$work/dist.out" 2>&1 && fail "failed runs, exit 0 under mpirun"
grep -q "8 runs, 0 finished before, 8 to run, 1 at once on each of 3 ranks" "$work/dist.out" || fail "dist: $(cat "$work/dist.out")"
for r in 0 1 2; do grep -q "(rank $r)" "$work/dist.out" || fail "rank $r ran nothing: $(cat "$work/dist.out")"; done
grep -q "kiln: error on rank 0 of 3: sweep: 4 of 8 runs failed" "$work/dist.out" || fail "dist: $(cat "$work/dist.out")"
cut -d, -f1-7 "$work/local/sweep.csv" > "$work/local.csv"
cut -d, -f1-7 "$work/dist/sweep.csv" > "$work/dist.csv"
diff "$work/local.csv" "$work/dist.csv" || fail "the distributed sweep's table differs from the local one"
[ -s "$work/dist/report.html" ] || fail "no report"
echo "PASS"

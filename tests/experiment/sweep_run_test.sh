#!/usr/bin/env bash
# `kiln sweep` as a user runs it: every run of the grid as a process of its own, two at once; a run that
# fails (a learning rate that makes the loss infinite) is a row of the table and the others finish; running
# the sweep again skips finished runs and resumes one stopped after a checkpoint; a run folder the grid
# no longer makes is refused, naming it.
#   sweep_run_test.sh KILN SOURCE_DIR
set -euo pipefail
kiln="$1" src="$2"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
cat > "$work/sweep.yaml" <<YAML
output: $work/out
parallel: 2
experiments:
  adding: $src/configs/greff/adding.yaml
grid:
  model[*].recurrent.cell: [peephole_lstm, lstm_cifg]
  train.optimizer.lr: [0.01, 100]
  seed: [1, 2]
set: {train: {steps: 40, eval_every: 20, checkpoint_every: 20, clip_grad_norm: 0, optimizer.name: sgd}, data.batch: 8, instruments.every: 20}
baseline: peephole_lstm
YAML

"$kiln" sweep "$work/sweep.yaml" > "$work/first.out" 2>&1 && fail "a sweep with failed runs exited 0"
grep -q "8 runs, 0 finished before, 8 to run, 2 at once" "$work/first.out" || fail "first: $(cat "$work/first.out")"
grep -q "sweep: 4 of 8 runs failed" "$work/first.out" || fail "failures not counted: $(cat "$work/first.out")"
grep -q "cell-lstm_cifg_lr-100_seed-2 FAILED: .*the loss is" "$work/first.out" || fail "failed run not named: $(cat "$work/first.out")"
grep -Eq "^cell=lstm_cifg, lr=0.01 +2/2 " "$work/first.out" || fail "table: $(cat "$work/first.out")"
grep -Eq "^cell=peephole_lstm, lr=100 +0/2 \(2 failed\)" "$work/first.out" || fail "failed variant row: $(cat "$work/first.out")"
[ "$(grep -c ',finished,' "$work/out/sweep.csv")" = 4 ] || fail "sweep.csv: $(cat "$work/out/sweep.csv")"
for f in report.html summary.txt; do [ -s "$work/out/$f" ] || fail "no $f"; done
[ -s "$work/out/adding/cell-peephole_lstm_lr-0.01_seed-1/report.html" ] || fail "a run's own report"

# Again: the finished runs are skipped; a run stopped after a checkpoint (no result yet) resumes.
ok="$work/out/adding/cell-lstm_cifg_lr-0.01_seed-1"
cp "$ok/result.json" "$work/result.before"
rm "$ok/result.json" "$ok/model.safetensors" "$ok/checkpoints/step_000000040.safetensors"
"$kiln" sweep "$work/sweep.yaml" --set 'grid.seed=[1, 2]' > "$work/again.out" 2>&1 || true
grep -q "8 runs, 3 finished before, 5 to run" "$work/again.out" || fail "again: $(cat "$work/again.out")"
grep -q "start  $ok (resumed)" "$work/again.out" || fail "not resumed: $(cat "$work/again.out")"
python3 - "$work/result.before" "$ok/result.json" <<'PY' || fail "a resumed run ends elsewhere than the uninterrupted one"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert a["eval_loss"] == b["eval_loss"] and b["resumed_from"] == 20, (a, b)
PY
# --table: no run starts; the same table.
"$kiln" sweep "$work/sweep.yaml" --table > "$work/table.out" 2>&1
grep -Eq "^cell=lstm_cifg, lr=0.01 +2/2 " "$work/table.out" || fail "--table: $(cat "$work/table.out")"
grep -q "start" "$work/table.out" && fail "--table started a run"

# The grid edited under a run folder: refused, naming it.
sed -i 's/steps: 40/steps: 41/' "$work/sweep.yaml"
rm "$ok/result.json"
"$kiln" sweep "$work/sweep.yaml" > "$work/edited.out" 2>&1 && fail "a changed grid over a run folder was accepted"
grep -q "out/adding/cell-[a-z_]*_lr-[0-9.]*_seed-[12] holds a run of another configuration than the grid now makes" "$work/edited.out" || fail "edited: $(cat "$work/edited.out")"
echo "PASS"

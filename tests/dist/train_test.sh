#!/usr/bin/env bash
# `mpirun -np N kiln train` (Note [Data-parallel steps]): in float64, 2 and 3 ranks on an uneven global
# batch of 7 end with the weights one process ends with, to 1e-12; the same N again gives the same bits;
# only rank 0 prints and writes; --resume refuses another N and resumes with the same; an error on one
# rank and a rank killed with SIGKILL each end the whole job with a message, never a hang.
#   train_test.sh KILN SOURCE_DIR MPIRUN
set -euo pipefail
kiln="$1" src="$2" mpirun="$3"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
common=(--set train.steps=30 --set dtype=float64 --set data.batch=7 --set train.eval_every=10 --set train.checkpoint_every=10
        --set instruments.every=10 --quiet)
"$kiln" train "$src/configs/adding_lstm.yaml" --set "output=$work/one" "${common[@]}" > "$work/one.out"
for n in 2 3; do
  timeout -k 10 300 "$mpirun" -np $n "$kiln" train "$src/configs/adding_lstm.yaml" --set "output=$work/n$n" "${common[@]}" > "$work/n$n.out" 2>&1 ||
    fail "mpirun -np $n: $(cat "$work/n$n.out")"
  [ "$(grep -c '^done:' "$work/n$n.out")" = 1 ] || fail "-np $n: not rank 0 alone printed: $(cat "$work/n$n.out")"
  grep -q "x $n ranks" "$work/n$n.out" || fail "-np $n: the ranks are not named: $(cat "$work/n$n.out")"
done
timeout -k 10 300 "$mpirun" -np 2 "$kiln" train "$src/configs/adding_lstm.yaml" --set "output=$work/again" "${common[@]}" > /dev/null 2>&1
python3 - "$work" <<'PY' || fail "weights"
import json, struct, sys
def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header, data = json.loads(b[8:8 + n]), b[8 + n:]
    out = {}
    for k, v in header.items():
        if k == "__metadata__": continue
        s, e = v["data_offsets"]
        out[k] = struct.unpack("<%dd" % ((e - s) // 8), data[s:e])
    return out
w = sys.argv[1]
one = load(f"{w}/one/model.safetensors")
for n in ("n2", "n3"):
    other = load(f"{w}/{n}/model.safetensors")
    assert one.keys() == other.keys()
    diff = max(abs(a - b) for k in one for a, b in zip(one[k], other[k]))
    print(f"{n}: largest difference from one process {diff:.2e}")
    assert diff < 1e-12, (n, diff)
assert load(f"{w}/n2/model.safetensors") == load(f"{w}/again/model.safetensors"), "2 ranks twice: different bits"
for f in ("result.json", "report.html", "metrics.csv", "instruments.jsonl"):
    open(f"{w}/n2/{f}")
PY

# float32: reported, not asserted (the ranks' sums round differently from one process's).
f32=(--set train.steps=30 --set data.batch=8 --set instruments.every=0 --quiet)
"$kiln" train "$src/configs/adding_lstm.yaml" --set "output=$work/f1" "${f32[@]}" > /dev/null
timeout -k 10 300 "$mpirun" -np 2 "$kiln" train "$src/configs/adding_lstm.yaml" --set "output=$work/f2" "${f32[@]}" > /dev/null 2>&1 || fail "float32 on 2 ranks"
python3 - "$work" <<'PY' || fail "float32 weights"
import json, struct, sys
def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header, data = json.loads(b[8:8 + n]), b[8 + n:]
    return {k: struct.unpack("<%df" % ((v["data_offsets"][1] - v["data_offsets"][0]) // 4), data[v["data_offsets"][0]:v["data_offsets"][1]])
            for k, v in header.items() if k != "__metadata__"}
a, b = load(f"{sys.argv[1]}/f1/model.safetensors"), load(f"{sys.argv[1]}/f2/model.safetensors")
print(f"float32, 2 ranks against one process after 30 steps: largest weight difference {max(abs(x - y) for k in a for x, y in zip(a[k], b[k])):.2e}")
PY

# --resume: another N is refused with the reason; the same N resumes.
rm "$work/n2/model.safetensors" "$work/n2/checkpoints/step_000000030.safetensors"
timeout -k 10 120 "$mpirun" -np 3 "$kiln" train --resume "$work/n2" > "$work/wrong_n.out" 2>&1 && fail "resumed 2 ranks' run on 3"
grep -q "written by a run on 2 rank(s), resumed on 3: resume it with mpirun -np 2" "$work/wrong_n.out" || fail "wrong N: $(cat "$work/wrong_n.out")"
"$kiln" train --resume "$work/n2" > "$work/alone.out" 2>&1 && fail "resumed 2 ranks' run alone"
grep -q "resume it with mpirun -np 2" "$work/alone.out" || fail "alone: $(cat "$work/alone.out")"
timeout -k 10 120 "$mpirun" -np 2 "$kiln" train --resume "$work/n2" --quiet > "$work/resume.out" 2>&1 || fail "resume: $(cat "$work/resume.out")"
grep -q "resumed from step 20" "$work/resume.out" || fail "resume: $(cat "$work/resume.out")"

# An error on one rank (rank 0 cannot make the run folder) ends the job at once, naming the rank.
start=$SECONDS
timeout -k 10 60 "$mpirun" -np 2 "$kiln" train "$src/configs/adding_lstm.yaml" --set output=/dev/null/run "${common[@]}" > "$work/error.out" 2>&1 &&
  fail "an error on rank 0 ended with exit 0"
[ $((SECONDS - start)) -lt 50 ] || fail "an error on one rank took $((SECONDS - start)) s to end the job"
grep -q "kiln: error on rank 0 of 2: " "$work/error.out" || fail "error: $(cat "$work/error.out")"

# A rank killed with SIGKILL ends the job too.
"$mpirun" -np 2 "$kiln" train "$src/configs/adding_lstm.yaml" --set "output=$work/killed" --set train.steps=1000000 --quiet \
  > "$work/killed.out" 2>&1 &
job=$!
victim=""
for _ in $(seq 100); do
  for p in $(pgrep -f "$work/killed" || true); do
    grep -qz '^OMPI_COMM_WORLD_RANK=1$' "/proc/$p/environ" 2>/dev/null && victim=$p
  done
  [ -n "$victim" ] && break
  sleep 0.1
done
[ -n "$victim" ] || { kill "$job"; fail "rank 1 never started"; }
sleep 1
kill -9 "$victim"
start=$SECONDS
status=0
for _ in $(seq 600); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
kill -0 "$job" 2>/dev/null && { kill -9 "$job"; fail "the job went on after a rank was killed"; }
wait "$job" || status=$?
[ "$status" != 0 ] || fail "a job with a killed rank exited 0"
grep -qi "signal 9\|killed" "$work/killed.out" || fail "killed: $(cat "$work/killed.out")"
echo "killed rank ended the job in $((SECONDS - start)) s, exit $status"
echo "PASS"

#!/usr/bin/env bash
# The reports in a browser: a run's report.html and a sweep's, opened in headless Chromium (Debian's
# chromium). The page's render check (Note [Render check], report/html.hpp) must find every figure drawn,
# the tables must hold the run's own numbers (from result.json and sweep.csv), and a screenshot must be
# a full page, not a blank one.
#   chromium_test.sh KILN SOURCE_DIR
set -euo pipefail
kiln="$1" src="$2"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || fail "no chromium: scripts/setup.sh installs Debian's chromium"
# As root Chromium needs --no-sandbox; a profile of its own keeps it from the user's.
chrome() { timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --user-data-dir="$work/profile" "$@" 2>/dev/null; }

# A run: a two-layer LSTM on the adding problem, instruments every 10 steps.
"$kiln" train "$src/configs/adding_lstm.yaml" --set "output=$work/run" --set train.steps=60 --set train.eval_every=20 \
  --set instruments.every=10 --set 'model[0].recurrent.layers=2' --quiet > /dev/null
chrome --virtual-time-budget=5000 --dump-dom "file://$work/run/report.html" > "$work/run.dom"
figures=$(sed -n 's/.*<body data-figures="\([0-9]*\)" data-rendered-figures="\([0-9]*\)".*/\1 \2/p' "$work/run.dom")
[ -n "$figures" ] || fail "the render check did not run: $(head -c 400 "$work/run.dom")"
read -r total drawn <<< "$figures"
[ "$total" -ge 7 ] || fail "run report: $total figures, expected loss, metric, two gradient-flow heatmaps, a flow chart, spectra, saturation"
[ "$drawn" = "$total" ] || fail "run report: $drawn of $total figures drawn: $(grep -o 'data-rendered="no"[^>]*' "$work/run.dom" | head -3)"
grep -c 'data-kind="heatmap"' "$work/run.dom" | grep -qx 2 || fail "one gradient-flow heatmap per layer expected"
numbers=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("%.4g %.4g" % (r["eval_loss"], r["train_loss"]))' "$work/run/result.json")
read -r eval_loss train_loss <<< "$numbers"
grep -q "<td>$eval_loss</td>" "$work/run.dom" || fail "eval loss $eval_loss not in the result table"
grep -q "<td>$train_loss</td>" "$work/run.dom" || fail "train loss $train_loss not in the result table"
grep -q 'data-rows="7" data-columns="50"' "$work/run.dom" || fail "the heatmap is not 7 records x 50 steps"
chrome --screenshot="$work/run.png" --window-size=1200,3000 "file://$work/run/report.html" > /dev/null
python3 - "$work/run.png" <<'PY' || fail "screenshot"
import struct, sys, os
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
w, h = struct.unpack(">II", data[16:24])
assert (w, h) == (1200, 3000), (w, h)
assert len(data) > 60000, "a blank page compresses to a few KB, got %d bytes" % len(data)
PY

# An encoder-decoder with attention: its report draws the attention of greedy decoding.
"$kiln" train "$src/configs/bottleneck_attention.yaml" --set "output=$work/s2s" --set train.steps=10 --set data.max_length=8 \
  --set data.batch=4 --set model.seq2seq.hidden=8 --set threads=1 --quiet > /dev/null
[ -s "$work/s2s/attention.json" ] || fail "no attention.json for an attention model"
chrome --virtual-time-budget=5000 --dump-dom "file://$work/s2s/report.html" > "$work/s2s.dom"
grep -q '<h2 id="attention">Attention</h2>' "$work/s2s.dom" || fail "no attention section"
s2s=$(sed -n 's/.*<body data-figures="\([0-9]*\)" data-rendered-figures="\([0-9]*\)".*/\1 \2/p' "$work/s2s.dom")
read -r total drawn <<< "$s2s"
[ "$drawn" = "$total" ] || fail "seq2seq report: $drawn of $total figures drawn"
[ "$(grep -c 'Attention weights: ' "$work/s2s.dom")" -ge 1 ] || fail "no attention heatmap"

# A sweep: its table and figures.
cat > "$work/sweep.yaml" <<YAML
output: $work/sweep
parallel: 2
experiments: {adding: $src/configs/greff/adding.yaml}
grid:
  model[*].recurrent.cell: [peephole_lstm, lstm_nfg]
  seed: [1, 2]
set: {train: {steps: 30, eval_every: 10}, data.batch: 8}
YAML
"$kiln" sweep "$work/sweep.yaml" --quiet > /dev/null
chrome --virtual-time-budget=5000 --dump-dom "file://$work/sweep/report.html" > "$work/sweep.dom"
grep -q '<table id="sweep-adding">' "$work/sweep.dom" || fail "no sweep table"
grep -q '<body data-figures="3" data-rendered-figures="3"' "$work/sweep.dom" || fail "sweep figures: $(grep -o '<body[^>]*>' "$work/sweep.dom")"
metric=$(python3 -c 'import csv,sys; rows=list(csv.DictReader(open(sys.argv[1]))); v=[float(r["eval_metric"]) for r in rows if "nfg" in r["variant"]]; import statistics; print("%.4g" % statistics.mean(v))' "$work/sweep/sweep.csv")
grep -q "<td>$metric ± " "$work/sweep.dom" || fail "the mean $metric of lstm_nfg is not in the table"
grep -q "against the baseline peephole_lstm" "$work/sweep.dom" || fail "no conclusion"
echo "PASS"

#!/usr/bin/env bash
# Every shipped experiment (configs/) and the README's reference block train from `kiln train` at a small
# size, `kiln summary` of the lecture notes' Keras model totals 671 parameters, and `kiln graph` boxes
# each time step.
#   configs_test.sh KILN SOURCE_DIR
set -euo pipefail
kiln="$1" src="$2"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
count=0
cd "$src"  # the CSV configs name their files relative to the repository's root
awk '/^## Experiments as files/ { section = 1 } section && /^```yaml/ { inside = 1; next } inside && /^```/ { exit }
     inside { print }' "$src/README.md" > "$work/readme_reference.yaml"
[ -s "$work/readme_reference.yaml" ] || { echo "FAIL: no yaml block in the README's Experiments section"; exit 1; }
for config in "$src"/configs/*.yaml "$work/readme_reference.yaml"; do
  name=$(basename "$config" .yaml)
  "$kiln" train "$config" --set "output=$work/$name" --set train.epochs=null --set train.steps=12 --set train.eval_every=6 \
    --set train.checkpoint_every=6 --set data.batch=4 --quiet > "$work/$name.out"
  grep -q "done: 12 steps" "$work/$name.out" || { cat "$work/$name.out"; echo "FAIL: $name"; exit 1; }
  for f in config.yaml metrics.csv metrics.jsonl model.safetensors checkpoints/step_000000012.safetensors; do
    [ -s "$work/$name/$f" ] || { echo "FAIL: $name has no $f"; exit 1; }
  done
  count=$((count + 1))
done
"$kiln" summary "$src/configs/keras_sentiment.yaml" | grep "Total params: 671" > /dev/null || { echo "FAIL: keras summary"; exit 1; }
# kiln graph: one training step, each time step of the generic LSTM in a box of its own.
"$kiln" graph "$src/configs/adding_lstm.yaml" --set "model[0].recurrent.impl=generic" --set data.length=3 \
  --out "$work/step.dot" > /dev/null
[ "$(grep -c 'subgraph cluster_' "$work/step.dot")" = 3 ] || { echo "FAIL: graph clusters"; exit 1; }
grep -q 'label="step 2"' "$work/step.dot" || { echo "FAIL: graph step labels"; exit 1; }
grep -q 'lstm\|sigmoid' "$work/step.dot" || { echo "FAIL: graph ops"; exit 1; }
echo "$count experiments (configs/ and the README's) train; the Keras model totals 671 parameters"

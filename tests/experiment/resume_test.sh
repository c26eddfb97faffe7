#!/usr/bin/env bash
# Note [Exact resume]: a run killed with SIGKILL at a random step and resumed ends with the same bits as
# a run never interrupted, on the generic graph and on the fused kernels (Adam, a cosine schedule and
# dropout, so every kind of state is in play), and for an encoder-decoder (a GRU seq2seq with attention
# whose teacher forcing draws from the default generator).
#   resume_test.sh KILN SOURCE_DIR
set -euo pipefail
kiln="$1" src="$2"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/exp.yaml" <<'YAML'
seed: 5
data: {task: adding, length: 20, batch: 16}
model:
  - recurrent: {cell: lstm, hidden: 24}
  - dropout: {p: 0.2}
  - linear: {out: auto}
train:
  steps: 2000
  optimizer: {name: adam, lr: 0.005}
  schedule: {name: cosine}
  eval_every: 100
  checkpoint_every: 15
  keep_checkpoints: 2
YAML
cat > "$work/seq2seq.yaml" <<'YAML'
seed: 2
data: {task: date_translation, batch: 8}
model:
  seq2seq: {cell: gru, hidden: 12, embedding: 8, attention: bahdanau, teacher_forcing: 0.8, dropout: 0.1}
train:
  steps: 1500
  optimizer: {name: adamw, lr: 0.003}
  eval_every: 1000
  checkpoint_every: 15
  keep_checkpoints: 2
YAML
cat > "$work/csv.yaml" <<YAML
seed: 4
data: {task: csv_classification, file: $src/data/waveforms.csv, batch: 16}
model:
  - recurrent: {cell: gru, hidden: 8}
  - linear: {out: auto}
train:
  epochs: 60
  optimizer: {name: adam, lr: 0.003}
  checkpoint_every: 15
  keep_checkpoints: 2
YAML
# (csv: shuffled passes over a file's rows, so the data position must come back too.)
for impl in generic fused seq2seq csv; do
  if [ "$impl" = seq2seq ] || [ "$impl" = csv ]; then
    exp="$work/$impl.yaml" set_args=(--set "output=$work/run")
  else
    exp="$work/exp.yaml" set_args=(--set "model[0].recurrent.impl=$impl" --set "output=$work/run")
  fi
  "$kiln" train "$exp" "${set_args[@]}" --quiet > /dev/null
  mv "$work/run" "$work/whole"
  "$kiln" train "$exp" "${set_args[@]}" --quiet > /dev/null &
  pid=$!
  # Kill it at a random step: once it has logged `at` rows (a row every 10 steps), past its first checkpoint.
  at=$((3 + RANDOM % 120))
  for _ in $(seq 1 30000); do
    [ -f "$work/run/metrics.csv" ] && [ "$(wc -l < "$work/run/metrics.csv")" -ge "$at" ] && break
    sleep 0.002
  done
  kill -9 "$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
  if [ -f "$work/run/model.safetensors" ]; then
    echo "FAIL ($impl): the run finished before it could be killed; make it longer"
    exit 1
  fi
  "$kiln" train --resume "$work/run" --quiet | grep "resumed from step"
  cmp "$work/whole/model.safetensors" "$work/run/model.safetensors" || { echo "FAIL ($impl): resumed weights differ"; exit 1; }
  cmp <(cut -d, -f1-6 "$work/whole/metrics.csv") <(cut -d, -f1-6 "$work/run/metrics.csv") ||
    { echo "FAIL ($impl): resumed metrics differ"; exit 1; }
  echo "$impl: killed, resumed, bit-identical weights and metrics"
  rm -rf "$work/run" "$work/whole"
done

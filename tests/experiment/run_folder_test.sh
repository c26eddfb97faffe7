#!/usr/bin/env bash
# A run folder as the commands use it: `kiln eval` gives the evaluation the run ended with; a corrupt
# newest checkpoint is refused with its reason and the one before it resumes the run; a checkpoint
# written by another configuration is refused, naming the first line that differs; `kiln generate`
# samples from a character model, translates with a seq2seq one and refuses other runs; a second `kiln train` into a run is refused; a
# cell registered by a plugin library (--load) trains and resumes like a built-in one.
#   run_folder_test.sh KILN SOURCE_DIR CELL_LIBRARY
set -euo pipefail
kiln="$1" src="$2" cells="$3"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
common=(--set train.steps=40 --set train.checkpoint_every=10 --set train.eval_every=20 --set data.batch=4 --quiet)

"$kiln" train "$src/configs/adding_lstm.yaml" --set "output=$work/add" "${common[@]}" > "$work/train.out"
trained=$(sed -n 's/.*eval loss \([^,]*\),.*/\1/p' "$work/train.out")
"$kiln" eval "$work/add" > "$work/eval.out"
grep -q "model.safetensors (step 40): eval loss $trained," "$work/eval.out" || { cat "$work/train.out" "$work/eval.out"; fail "eval"; }

"$kiln" train "$src/configs/adding_lstm.yaml" --set "output=$work/add" "${common[@]}" > /dev/null 2> "$work/again.err" &&
  fail "a second train into a run folder was accepted"
grep -q "already holds a run; continue it with \`kiln train --resume" "$work/again.err" || fail "second train: $(cat "$work/again.err")"

# Corrupt the newest checkpoint (step 40): resuming says why and goes on from step 30.
rm "$work/add/model.safetensors"
head -c 100 "$work/add/checkpoints/step_000000040.safetensors" > "$work/cut" && mv "$work/cut" "$work/add/checkpoints/step_000000040.safetensors"
"$kiln" train --resume "$work/add" --quiet > "$work/resume.out" 2> "$work/resume.err"
grep -q "resumed from step 30" "$work/resume.out" || fail "resume after corruption: $(cat "$work/resume.out" "$work/resume.err")"
grep -q "step_000000040.safetensors.*resuming from .*step_000000030.safetensors instead" "$work/resume.err" ||
  fail "no warning naming the refused checkpoint: $(cat "$work/resume.err")"

# Another configuration: every checkpoint is refused, naming the line.
sed -i 's/lr: 0.01/lr: 0.02/' "$work/add/config.yaml"
"$kiln" train --resume "$work/add" --quiet > /dev/null 2> "$work/mismatch.err" && fail "a changed config.yaml was resumed"
grep -q "written by another configuration than the run's config.yaml (they differ from line" "$work/mismatch.err" ||
  fail "mismatch: $(cat "$work/mismatch.err")"

"$kiln" train "$src/configs/adding_lstm.yaml" --set train.steps=null --set train.epochs=2 --set "output=$work/e" 2> "$work/epochs.err" &&
  fail "epochs of generated data"
grep -q "train.epochs: the task 'adding' generates its data without end; give train.steps instead" "$work/epochs.err" ||
  fail "epochs: $(cat "$work/epochs.err")"
"$kiln" generate "$work/add" 2> "$work/gen.err" && fail "generate on an adding run"
grep -q "has no text to generate; generate samples from a char_lm or word_lm run" "$work/gen.err" || fail "generate: $(cat "$work/gen.err")"
"$kiln" train "$src/configs/char_lm_fortunes.yaml" --set "output=$work/chars" --set "model[1].recurrent.hidden=16" \
  "${common[@]}" > /dev/null
text=$("$kiln" generate "$work/chars" --prime "Q: " --length 30 --seed 3)
[ "${#text}" -ge 33 ] || fail "generate gave '$text'"
[ "$text" = "$("$kiln" generate "$work/chars" --prime "Q: " --length 30 --seed 3)" ] || fail "generate is not repeatable"
"$kiln" generate "$work/chars" --input "x" 2> "$work/gen.err" && fail "--input on a language model"
grep -q "\-\-input is for seq2seq runs" "$work/gen.err" || fail "generate --input: $(cat "$work/gen.err")"
# A seq2seq run translates given sources, or the first evaluation examples, by greedy or beam search.
"$kiln" train "$src/configs/date_translation_bahdanau.yaml" --set "output=$work/dates" --set model.seq2seq.hidden=8 \
  "${common[@]}" > /dev/null
"$kiln" generate "$work/dates" --input "July 4, 1976" --input "3rd of March 2021" --beam 3 > "$work/dates.out"
[ "$(grep -c -E '^(July 4, 1976     |3rd of March 2021) -> [0-9-]*$' "$work/dates.out")" = 2 ] ||
  fail "translate: $(cat "$work/dates.out")"
[ "$("$kiln" generate "$work/dates" | grep -c " -> ")" = 4 ] || fail "translate the evaluation examples"
"$kiln" generate "$work/dates" --beam 0 2> /dev/null && fail "--beam 0 accepted"
"$kiln" train "$src/configs/adding_lstm.yaml" --load "$cells" --set "model[0].recurrent.cell=half_rnn" \
  --set "output=$work/own" "${common[@]}" 2> /dev/null | grep "done: 40 steps" > /dev/null || fail "a plugin's cell did not train"
rm "$work/own/model.safetensors" "$work/own/checkpoints/step_000000040.safetensors"
KILN_PLUGINS="$cells" "$kiln" train --resume "$work/own" --quiet 2> /dev/null | grep "resumed from step 30" > /dev/null ||
  fail "a plugin's cell did not resume"
echo "eval, refused checkpoints, config mismatch, generate and a plugin's cell behave"

#!/usr/bin/env bash
# The gradient-flow instrument on the adding problem over 100 steps: after training, a tanh RNN's
# ||dL/dh_0|| is a vanishing fraction of ||dL/dh_99||, an LSTM's is not (and the LSTM learns the sum).
#   vanishing_test.sh KILN SOURCE_DIR
set -euo pipefail
kiln="$1" src="$2"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
for cell in lstm rnn_tanh; do
  "$kiln" train "$src/configs/adding_100.yaml" --set "output=$work/$cell" --set "model[*].recurrent.cell=$cell" --set seed=1 \
    --set instruments.every=1000 --quiet > /dev/null
done
python3 - "$work" <<'PY' || fail "gradient flow"
import json, sys
def last(run):
    line = open(f"{sys.argv[1]}/{run}/instruments.jsonl").read().strip().split("\n")[-1]
    g = json.loads(line)["layers"][0]["grad_norms"]
    assert len(g) == 100, len(g)
    return g[0] / g[-1], json.load(open(f"{sys.argv[1]}/{run}/result.json"))["eval_metric"]
lstm, lstm_mse = last("lstm")
rnn, rnn_mse = last("rnn_tanh")
print(f"dL/dh_0 / dL/dh_99: lstm {lstm:.2e} (mse {lstm_mse:.4f}), rnn_tanh {rnn:.2e} (mse {rnn_mse:.4f})")
assert lstm > 1e-3 and lstm_mse < 0.02, "the LSTM's gradient should reach the start and the LSTM learn the sum"
assert rnn < 1e-8 and rnn_mse > 0.1, "the tanh RNN's gradient should vanish over 100 steps"
PY
echo "PASS"

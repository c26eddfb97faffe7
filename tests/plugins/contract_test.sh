#!/usr/bin/env bash
# The SDK checks a cell's contract at compile time: each broken cell in bad_cell.cpp fails to compile
# with a message naming what is missing, and the unbroken one compiles.
#   contract_test.sh CXX SDK_DIR
set -uo pipefail
cxx="$1" sdk="$2" src="$(dirname "${BASH_SOURCE[0]}")/bad_cell.cpp"
compile() { "$cxx" -std=c++17 -fsyntax-only -I "$sdk" "$@" "$src" 2>&1; }
expect_refusal() {
  local define="$1" message="$2" out
  if out=$(compile -D"$define"); then echo "$define: compiled, but the cell breaks the contract"; exit 1; fi
  if ! grep -qF "$message" <<<"$out"; then echo "$define: refused without saying \"$message\":"; echo "$out" | head -20; exit 1; fi
  echo "$define: refused: $message"
}
out=$(compile) || { echo "the complete cell does not compile:"; echo "$out" | head -20; exit 1; }
expect_refusal KILN_BAD_NO_NAME "a Cell needs \`static constexpr const char* name\`"
expect_refusal KILN_BAD_NO_BACKWARD "a Cell needs \`template <class T> static void backward(const kiln::sdk::Backward<T>&)\`"
expect_refusal KILN_BAD_IN_PLACE_RECURRENT "recurrent_gradients_in_place writes dhp over extra"
echo "contract: every broken cell refused with its message"

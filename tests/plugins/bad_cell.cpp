// A cell that breaks the SDK's contract in one way per KILN_BAD_* define: make_recurrent_kernel must refuse
// it at compile time with a message that says what is missing (tests/plugins/contract_test.sh).

#include "kiln/recurrent_kernel.hpp"

struct Cell {
#ifndef KILN_BAD_NO_NAME
  static constexpr const char* name = "bad";
#endif
  static constexpr const char* description = "a cell missing something";
  static constexpr int gates = 1, states = 1;
  template <class T>
  static void forward(const kiln::sdk::Forward<T>&) {}
#ifndef KILN_BAD_NO_BACKWARD
  template <class T>
  static void backward(const kiln::sdk::Backward<T>&) {}
#endif
#ifdef KILN_BAD_IN_PLACE_RECURRENT
  static constexpr bool recurrent_gradients_in_place = true;  // without split gates
#endif
};

const kiln_recurrent_kernel& kernel() {
  static const kiln_recurrent_kernel k = kiln::sdk::make_recurrent_kernel<Cell>();
  return k;
}

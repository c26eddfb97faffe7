#pragma once
// The plugin SDK's recurrent-kernel skeleton (kiln/recurrent_kernel.hpp): what a Cell declares, read
// with defaults for what it may leave out, and checked at compile time with messages that say what is
// missing (static_assert in check_cell, instantiated by make_recurrent_kernel<Cell>).

#include <array>
#include <cstdint>
#include <type_traits>

#include "kiln/recurrent_cell.hpp"

namespace kiln::sdk::detail {

#define KILN_SDK_HAS(trait, expr)                                   \
  template <class C, class = void>                                  \
  struct trait : std::false_type {};                                \
  template <class C>                                                \
  struct trait<C, std::void_t<decltype(expr)>> : std::true_type {};

KILN_SDK_HAS(HasName, C::name)
KILN_SDK_HAS(HasDescription, C::description)
KILN_SDK_HAS(HasGates, C::gates)
KILN_SDK_HAS(HasStates, C::states)
KILN_SDK_HAS(HasParams, C::params)
KILN_SDK_HAS(HasForward, C::template forward<float>(std::declval<const Forward<float>&>()))
KILN_SDK_HAS(HasBackward, C::template backward<float>(std::declval<const Backward<float>&>()))
KILN_SDK_HAS(HasForwardEarly, C::template forward_early<float>(std::declval<const Forward<float>&>()))
KILN_SDK_HAS(HasForwardLate, C::template forward_late<float>(std::declval<const Forward<float>&>()))
KILN_SDK_HAS(HasBackwardLate, C::template backward_late<float>(std::declval<const Backward<float>&>()))
KILN_SDK_HAS(HasBackwardEarly, C::template backward_early<float>(std::declval<const Backward<float>&>()))
#undef KILN_SDK_HAS

// KILN_SDK_OPTIONAL(Name, member, type, fallback): Name<C>::value is C::member when the cell declares it,
// else fallback.
#define KILN_SDK_OPTIONAL(Name, member, type, fallback)                                     \
  template <class C, class = void>                                                          \
  struct Name : std::integral_constant<type, (fallback)> {};                                \
  template <class C>                                                                        \
  struct Name<C, std::void_t<decltype(C::member)>> : std::integral_constant<type, static_cast<type>(C::member)> {};

KILN_SDK_OPTIONAL(ExtrasOf, extras, int, 0)
KILN_SDK_OPTIONAL(LateGatesOf, late_gates, int, 0)
KILN_SDK_OPTIONAL(SplitRecurrentOf, split_recurrent, bool, false)
KILN_SDK_OPTIONAL(SplitGatesOf, split_gates, int, SplitRecurrentOf<C>::value ? 1 : 0)  // split_recurrent: the older spelling of 1
KILN_SDK_OPTIONAL(GateBiasesOf, gate_biases, bool, true)
KILN_SDK_OPTIONAL(InPlaceOf, gradients_in_place, bool, false)
KILN_SDK_OPTIONAL(RowScratchOf, row_scratch, int, 0)
KILN_SDK_OPTIONAL(RecurrentInPlaceOf, recurrent_gradients_in_place, bool, false)
#undef KILN_SDK_OPTIONAL

template <class C, bool = HasParams<C>::value>
struct ParamsOf {
  static constexpr int count = 0;
  static constexpr const Param* list = nullptr;
};
template <class C>
struct ParamsOf<C, true> {
  static constexpr int count = static_cast<int>(std::extent_v<std::remove_reference_t<decltype(C::params)>>);
  static constexpr const Param* list = C::params;
};

/// Everything the skeleton reads of a Cell, defaults filled in.
template <class Cell>
struct Traits {
  static constexpr int G = Cell::gates, S = Cell::states;
  static constexpr int extras = ExtrasOf<Cell>::value;
  static constexpr int late_gates = LateGatesOf<Cell>::value;
  static constexpr int split_gates = SplitGatesOf<Cell>::value;  // trailing gates whose recurrent part is kept apart
  static constexpr bool gate_biases = GateBiasesOf<Cell>::value;  // bias_ih and bias_hh after the weights
  static constexpr bool in_place = InPlaceOf<Cell>::value;
  static constexpr bool recurrent_in_place = RecurrentInPlaceOf<Cell>::value;  // dhp over extra on the last backward
  static constexpr int row_scratch = RowScratchOf<Cell>::value;                // H-vectors of scratch per row
  static constexpr int extra_params = ParamsOf<Cell>::count;
  static constexpr int first_extra = gate_biases ? 4 : 2;  // index of Cell::params[0] among the kernel's parameters
  static constexpr int param_count = first_extra + extra_params;
  static constexpr const Param& param(int k) { return ParamsOf<Cell>::list[k]; }
  /// The elements of all extra parameters per H, and where parameter k starts among them (in H units).
  static constexpr int extra_vectors() {
    int n = 0;
    for (int k = 0; k < extra_params; ++k) n += param(k).vectors;
    return n;
  }
  static constexpr int extra_offset(int k) {
    int n = 0;
    for (int j = 0; j < k; ++j) n += param(j).vectors;
    return n;
  }
  static constexpr std::array<const char*, param_count> names() {
    std::array<const char*, param_count> out{};
    out[0] = "weight_ih";
    out[1] = "weight_hh";
    if (gate_biases) out[2] = "bias_ih", out[3] = "bias_hh";
    for (int k = 0; k < extra_params; ++k) out[first_extra + k] = param(k).name;
    return out;
  }
};

template <class Cell>
struct ParamNames {
  static constexpr std::array<const char*, Traits<Cell>::param_count> value = Traits<Cell>::names();
};

// At most this many parameters beyond the gate weights (the ABI's limit is 64 in all).
inline constexpr int kMaxExtraParams = 32;

template <class Cell>
constexpr bool check_cell() {
  static_assert(HasName<Cell>::value, "a Cell needs `static constexpr const char* name` (the registered cell it equals)");
  static_assert(HasDescription<Cell>::value, "a Cell needs `static constexpr const char* description` (one line)");
  static_assert(HasGates<Cell>::value, "a Cell needs `static constexpr int gates` (G: weight_ih is [G*H, I])");
  static_assert(HasStates<Cell>::value, "a Cell needs `static constexpr int states` (1: h; 2: h and c)");
  if constexpr (HasGates<Cell>::value && HasStates<Cell>::value) {
    using Tr = Traits<Cell>;
    static_assert(Tr::S == 1 || Tr::S == 2, "Cell::states must be 1 (h) or 2 (h, c)");
    static_assert(Tr::G >= 1, "Cell::gates must be at least 1");
    static_assert(Tr::extras >= 0 && Tr::late_gates >= 0 && Tr::late_gates < Tr::G, "Cell::late_gates must be in [0, gates)");
    static_assert(Tr::split_gates >= 0 && Tr::split_gates <= Tr::G, "Cell::split_gates must be in [0, gates]");
    static_assert(!(Tr::split_gates > 0 && Tr::late_gates > 0), "split gates and late gates do not combine");
    static_assert(Tr::extra_params <= kMaxExtraParams, "a Cell has at most 32 params beyond its gate weights");
    static_assert(Tr::row_scratch >= 0, "Cell::row_scratch must be 0 or more");
    static_assert(!Tr::recurrent_in_place || (Tr::split_gates > 0 && Tr::extras == Tr::split_gates),
                  "recurrent_gradients_in_place writes dhp over extra: it needs extras == split_gates > 0");
    if constexpr (Tr::late_gates == 0) {
      static_assert(HasForward<Cell>::value,
                    "a Cell needs `template <class T> static void forward(const kiln::sdk::Forward<T>&)` (or, with "
                    "late_gates > 0, forward_early and forward_late)");
      static_assert(HasBackward<Cell>::value,
                    "a Cell needs `template <class T> static void backward(const kiln::sdk::Backward<T>&)` (or, with "
                    "late_gates > 0, backward_late and backward_early)");
    } else {
      static_assert(HasForwardEarly<Cell>::value && HasForwardLate<Cell>::value,
                    "a Cell with late_gates > 0 needs `template <class T> static void forward_early(const "
                    "kiln::sdk::Forward<T>&)` and `forward_late`");
      static_assert(HasBackwardLate<Cell>::value && HasBackwardEarly<Cell>::value,
                    "a Cell with late_gates > 0 needs `template <class T> static void backward_late(const "
                    "kiln::sdk::Backward<T>&)` and `backward_early`");
    }
  }
  return true;
}

}  // namespace kiln::sdk::detail

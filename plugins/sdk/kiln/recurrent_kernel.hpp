#pragma once
// The plugin SDK's recurrent-kernel skeleton: describe a cell's pointwise math for one batch row and
// kiln::sdk::make_recurrent_kernel<Cell>() turns it into a kiln_recurrent_kernel (kiln/plugin.h) that
// runs a whole sequence. Header-only, C++17, and it needs nothing but kiln/plugin.h (and xsimd, when
// installed, for the packed GEMM), so a plugin built apart from Kiln uses it as is. Kiln's own LSTM,
// GRU and RNN kernels are written with it.
//
// Note [Fused recurrent skeleton]: forward projects the inputs in one GEMM per block of steps (biases
// folded in), then per step runs one recurrent GEMM (against W_hh packed once per sequence:
// kiln/packed_gemm.hpp) into the gates and the cell's pointwise pass over the batch rows. It keeps
// the gates the cell leaves in place (post-activations, say), every state besides h the sequence passes
// through (Note [State history]; h is y, which Kiln hands back to backward) and any extra vectors the
// cell asks for. Backward runs the cell's pointwise
// backward per step and one GEMM per step for the gradient of the previous h; dX, dW_ih, dW_hh and the
// bias gradients take one GEMM or column sum per block of steps (Note [Weight gradients by blocks]).
// A narrow batch of 16 rows or more runs as two groups of rows, each a problem of its own with its own
// memory, one per thread (Note [Rows apart], kiln/detail/recurrent_groups.hpp); a wide one runs the steps of
// half the batch on each thread (Note [Rows side by side]); a small one splits into the steps and the
// blocks' GEMMs beside them. Sequences past their length keep their state and output zeros.
//
// A Cell provides (see plugins/builtin/*.cpp, examples/plugin/mgu_plugin.cpp and the contract in
// kiln/recurrent_cell.hpp; make_recurrent_kernel<Cell> checks it at compile time and says what is missing):
//   static constexpr const char* name, *description;   name: the registered cell the kernel equals
//   static constexpr int gates;            G: the cell's weights are weight_ih [G*H, I], weight_hh [G*H, H]
//   static constexpr int states;           1 (h) or 2 (h, c)
//   template <class T> static void forward(const Forward<T>&)        when late_gates == 0
//   template <class T> static void backward(const Backward<T>&)
//   or forward_early / forward_late and backward_late / backward_early when late_gates > 0.
// and may say (defaults in brackets):
//   static constexpr int extras;           [0] H-sized vectors per row kept for backward besides the gates
//   static constexpr int late_gates;       [0] the last late_gates gates read m (made by forward_early) instead
//                                          of h through weight_hh, as Cho et al.'s GRU reads r * h
//   static constexpr int split_gates;      [0] the last split_gates gates get h W_hh^T + b_hh apart from the
//                                          input's part (in hp), and their recurrent gradient apart (dhp):
//                                          1 for PyTorch's GRU (n = tanh(x_n + r (W_hn h + b_hn))), all G for
//                                          a layer-normalised LSTM (LN(x W_ih^T) + LN(h W_hh^T)). The older
//                                          `split_recurrent = true` means split_gates = 1.
//   static constexpr bool gate_biases;     [true] the cell has bias_ih and bias_hh (PyTorch's) after its
//                                          weights; false: no gate biases (a cell's own biases are params)
//   static constexpr kiln::sdk::Param params[];  [none] parameters beyond the gate weights, with their shapes
//                                          (peephole vectors, layer-norm gains, ...): read in forward and
//                                          backward (param[k]); their gradients are added per row (dparam[k])
//   static constexpr bool gradients_in_place;  [false] backward (and backward_late, backward_early) may
//                                          write dgates over gates — each reads an element of gates only
//                                          before writing that element of dgates
//   static constexpr bool recurrent_gradients_in_place;  [false] likewise dhp over extra, on the last
//                                          backward (needs extras == split_gates)
//   static constexpr int row_scratch;      [0] H-vectors of scratch each row's functions may use
//
// The kernel's parameters, in order: weight_ih, weight_hh, [bias_ih, bias_hh,] then Cell::params.
//
// The skeleton's parts: kiln/recurrent_cell.hpp (the contract), and in kiln/detail/ (the scheduler, not the
// contract): recurrent_contract.hpp (defaults and compile-time checks), recurrent_layout.hpp (sizes and
// buffers), recurrent_rows.hpp (rows of a sequence, h from y), recurrent_forward.hpp,
// recurrent_backward.hpp, recurrent_groups.hpp (Note [Rows apart]) and recurrent_schedule.hpp (threads);
// this file makes the kernel's entry points.

#include <cstdint>
#include <exception>

#include "kiln/host_helpers.hpp"
#include "kiln/plugin.h"
#include "kiln/detail/recurrent_backward.hpp"
#include "kiln/recurrent_cell.hpp"
#include "kiln/detail/recurrent_forward.hpp"
#include "kiln/detail/recurrent_groups.hpp"
#include "kiln/detail/recurrent_layout.hpp"

namespace kiln::sdk {
namespace detail {

// Runs f, turning an exception into a message and a nonzero return: nothing may unwind into Kiln.
template <class F>
int guarded(char* err, std::size_t err_size, F&& f) {
  try {
    f();
    return 0;
  } catch (const Error& e) {
    write_message(err, err_size, "%s", e.message);
  } catch (const std::exception& e) {
    write_message(err, err_size, "%s", e.what());
  } catch (...) {
    write_message(err, err_size, "unknown exception");
  }
  return 1;
}

template <class Cell>
struct Entry {
  static int supports(const kiln_recurrent_problem* p, char* why, std::size_t size) {
    if (p->dtype != KILN_FLOAT32 && p->dtype != KILN_FLOAT64) {
      write_message(why, size, "runs float32 and float64 only");
      return 1;
    }
    return 0;
  }
  static std::size_t saved_bytes(const kiln_recurrent_problem* p) {
    Group<Cell> g[2];
    std::int64_t saved, work;
    plan_groups<Cell>(*p, g, &saved, &work);
    return static_cast<std::size_t>(saved) * element_size(*p);
  }
  static std::size_t work_bytes(const kiln_recurrent_problem* p) {
    Group<Cell> g[2];
    std::int64_t saved, work;
    plan_groups<Cell>(*p, g, &saved, &work);
    return static_cast<std::size_t>(work) * element_size(*p);
  }
  template <class T>
  static void run_forward(const kiln_host* host, const kiln_recurrent_problem& p, const kiln_tensor* x, const kiln_tensor* states,
                          const kiln_tensor* params, kiln_tensor* y, kiln_tensor* final_states, void* saved, void* work) {
    if (row_groups(p, Cell::gates) > 1)
      forward_groups<Cell, T>(host, p, x, states, params, y, final_states, static_cast<T*>(saved), static_cast<T*>(work));
    else
      detail::forward<Cell, T>(host, p, x, states, params, y, final_states, static_cast<T*>(saved), static_cast<T*>(work));
  }
  template <class T>
  static void run_backward(const kiln_host* host, const kiln_recurrent_problem& p, const kiln_tensor* x, const kiln_tensor* states,
                           const kiln_tensor* params,
                           void* saved, const kiln_tensor* dy, const kiln_tensor* d_final, kiln_tensor* dx, kiln_tensor* d_states,
                           kiln_tensor* d_params, void* work) {
    if (row_groups(p, Cell::gates) > 1)
      backward_groups<Cell, T>(host, p, x, states, params, static_cast<T*>(saved), dy, d_final, dx, d_states, d_params,
                               static_cast<T*>(work));
    else
      detail::backward<Cell, T>(host, p, x, states, params, static_cast<T*>(saved), dy, d_final, dx, d_states, d_params,
                                static_cast<T*>(work));
  }
  static int forward(const kiln_host* host, const kiln_recurrent_problem* p, const kiln_tensor* x, const kiln_tensor* states,
                     const kiln_tensor* params, kiln_tensor* y, kiln_tensor* final_states, void* saved, void* work, char* err,
                     std::size_t err_size) {
    return guarded(err, err_size, [&] {
      check<Cell>(*p, x, states, params);
      expect_sequence(*y, "y", *p);
      if (p->dtype == KILN_FLOAT32)
        run_forward<float>(host, *p, x, states, params, y, final_states, saved, work);
      else
        run_forward<double>(host, *p, x, states, params, y, final_states, saved, work);
    });
  }
  static int backward(const kiln_host* host, const kiln_recurrent_problem* p, const kiln_tensor* x, const kiln_tensor* states,
                      const kiln_tensor* params, void* saved, const kiln_tensor* dy, const kiln_tensor* d_final,
                      kiln_tensor* dx, kiln_tensor* d_states, kiln_tensor* d_params, void* work, char* err, std::size_t err_size) {
    return guarded(err, err_size, [&] {
      check<Cell>(*p, x, states, params);
      expect_sequence(*dy, "dy", *p);
      if (p->y == nullptr)
        fail("%s: backward needs forward's y (problem->y): list kiln::sdk::kRecurrentKernelFlags in the plugin's kernel_flags",
             Cell::name);
      expect_sequence(*p->y, "y", *p);
      if (p->dtype == KILN_FLOAT32)
        run_backward<float>(host, *p, x, states, params, saved, dy, d_final, dx, d_states, d_params, work);
      else
        run_backward<double>(host, *p, x, states, params, saved, dy, d_final, dx, d_states, d_params, work);
    });
  }
};

}  // namespace detail

/// What a kernel made by make_recurrent_kernel can take and needs (kiln_plugin.kernel_flags): y and dy
/// by strides, forward's y back in backward (Note [h from y]), and dL/dh_t reported when asked
/// (problem->dh, Kiln's gradient-flow recording).
inline constexpr std::uint32_t kRecurrentKernelFlags = KILN_KERNEL_STRIDED_SEQUENCES | KILN_KERNEL_BACKWARD_READS_Y | KILN_KERNEL_REPORTS_DH;

/// The kiln_recurrent_kernel for Cell: parameters weight_ih, weight_hh, bias_ih, bias_hh (PyTorch's;
/// without the biases when Cell::gate_biases is false), then Cell::params; any lengths, both directions,
/// float32 and float64. List kRecurrentKernelFlags for it in the plugin's kernel_flags.
template <class Cell>
constexpr kiln_recurrent_kernel make_recurrent_kernel() {
  static_assert(detail::check_cell<Cell>());
  using E = detail::Entry<Cell>;
  using Tr = detail::Traits<Cell>;
  return kiln_recurrent_kernel{Cell::name,   Cell::description, Cell::states,    Tr::param_count, detail::ParamNames<Cell>::value.data(),
                               &E::supports, &E::saved_bytes,   &E::work_bytes,  &E::forward,     &E::backward};
}

}  // namespace kiln::sdk

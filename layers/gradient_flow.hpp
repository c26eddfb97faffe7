#pragma once
// Gradient flow through time: the norm of dL/dh_t for every step t of every recurrent layer.
//
// Note [Gradient flow]: while a GradientFlow lives on a thread, each recurrent layer that runs forward
// there opens a trace per layer and direction; in the backward pass that follows, each trace receives
// ||dL/dh_t||, the Frobenius norm over the batch of the whole gradient of the state h after step t (what
// flows in from the output y_t and from step t+1). On the generic graph a gradient hook on each step's
// h records it (Note [Gradient hooks]); a fused kernel reports it from its backward pass when it can
// (KILN_KERNEL_REPORTS_DH), and a layer whose kernel cannot runs that forward on the generic graph, so a
// recording is always complete. The vanishing gradient of a tanh RNN shows as norms falling
// geometrically going back from the loss; an LSTM's stay level.
//
//   kiln::nn::GradientFlow flow;
//   auto loss = model.forward(x) ...; loss.backward();
//   for (const auto& t : flow.traces()) ... t.norms[0] is ||dL/dh_0||

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.hpp"

namespace kiln::nn {

class Module;
class RecurrentCell;

struct FlowTrace {
  const Module* layer = nullptr;  ///< the recurrent layer
  std::int64_t index = 0;         ///< layer * directions + direction (PyTorch's l{k}[_reverse])
  bool reverse = false;
  std::string path;               ///< "generic", or the fused kernel that reported it
  std::vector<double> sum_sq;     ///< per step t (time order): the sum of squares of dL/dh_t
  // What the layer ran, for instruments that re-run the cell (step Jacobians, gate saturation): the cell
  // (owned by the layer), its input sequence [T, B, I] time-major, its initial state and the lengths.
  const RecurrentCell* cell = nullptr;
  Tensor input;
  std::vector<Tensor> initial;
  std::vector<std::int64_t> lengths;
  /// ||dL/dh_t|| per step.
  std::vector<double> norms() const;
  /// Adds the squares of g (dL/dh_t, [B, ...]) to step t; with `rows`, only of the rows it marks.
  void add(std::int64_t t, const Tensor& g, const std::vector<bool>* rows = nullptr);
};

class GradientFlow {
 public:
  /// Starts recording on the calling thread (one recording at a time per thread; nesting is an error).
  GradientFlow();
  ~GradientFlow();
  GradientFlow(const GradientFlow&) = delete;
  GradientFlow& operator=(const GradientFlow&) = delete;
  /// The traces opened so far, in the order their layers ran.
  std::vector<FlowTrace> traces() const;

  /// For layers: a new trace of `steps` steps when a recording is active on this thread, else null.
  static std::shared_ptr<FlowTrace> open(const Module* layer, std::int64_t index, bool reverse, std::int64_t steps,
                                         const std::string& path);
  /// The same, keeping what the cell ran on (FlowTrace::cell, input, initial, lengths).
  static std::shared_ptr<FlowTrace> open(const Module* layer, std::int64_t index, bool reverse, const RecurrentCell& cell,
                                         const Tensor& input, const std::vector<Tensor>& initial,
                                         const std::vector<std::int64_t>& lengths, const std::string& path);
  /// Whether a recording is active on this thread.
  static bool active();

  struct Data;  // the traces, shared with the thread's active pointer

 private:
  std::shared_ptr<Data> data_;
};

}  // namespace kiln::nn

#pragma once
// Note [Activation probe]: while an ActivationProbe lives on a thread, sigmoid and tanh hand each output
// they compute there to its function (the op's name and the value), in the order they run. An instrument
// reads a cell's gates this way without knowing how the cell is written: a researcher's own cell's
// sigmoids are seen like the LSTM's (experiment/instruments.hpp measures gate saturation with it). When
// none is alive an op pays one thread-local test.
//
//   kiln::ActivationProbe probe([&](const char* op, const kiln::Tensor& y) { seen.emplace_back(op, y); });
//   cell.step(x, state);

#include <functional>

namespace kiln {

class Tensor;

class ActivationProbe {
 public:
  using Fn = std::function<void(const char* op, const Tensor& output)>;
  explicit ActivationProbe(Fn fn);
  ~ActivationProbe();
  ActivationProbe(const ActivationProbe&) = delete;
  ActivationProbe& operator=(const ActivationProbe&) = delete;

  /// Called by the ops: hands `output` to the thread's probe, if any.
  static void report(const char* op, const Tensor& output);

 private:
  Fn fn_;
  ActivationProbe* outer_;
};

}  // namespace kiln

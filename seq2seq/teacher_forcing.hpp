#pragma once
// Teacher-forcing schedules: the probability that a decoder reads the true previous token rather than
// its own guess, by training step. Starting near 1 and decaying is Bengio et al.'s scheduled sampling
// (2015); it narrows the gap between training (true prefixes) and decoding (own prefixes).
//
//   auto tf = kiln::nn::TeacherForcing::inverse_sigmoid(500);
//   for (step ...) model.forward(src, lengths, tgt_in, tf.ratio(step));

#include <cstdint>
#include <string>

namespace kiln::nn {

class TeacherForcing {
 public:
  /// The same ratio at every step.
  static TeacherForcing constant(double ratio);
  /// From `start` to `end` linearly over `steps`, then `end`.
  static TeacherForcing linear(double start, double end, std::int64_t steps);
  /// k^step, 0 < k < 1.
  static TeacherForcing exponential(double k);
  /// k / (k + exp(step / k)), k >= 1: near 1 for the first ~k steps, then falling.
  static TeacherForcing inverse_sigmoid(double k);

  double ratio(std::int64_t step) const;
  /// "linear(1 -> 0.5 over 1000 steps)", for logs.
  std::string describe() const;

 private:
  enum class Kind { Constant, Linear, Exponential, InverseSigmoid };
  TeacherForcing(Kind kind, double a, double b, std::int64_t steps) : kind_(kind), a_(a), b_(b), steps_(steps) {}
  Kind kind_;
  double a_, b_;
  std::int64_t steps_;
};

}  // namespace kiln::nn

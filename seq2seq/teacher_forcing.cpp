#include "seq2seq/teacher_forcing.hpp"

#include <algorithm>
#include <cmath>

#include "tensor/error.hpp"

namespace kiln::nn {

TeacherForcing TeacherForcing::constant(double ratio) {
  KILN_CHECK(ratio >= 0 && ratio <= 1, "TeacherForcing::constant: the ratio must be in [0, 1], got {}", ratio);
  return {Kind::Constant, ratio, ratio, 0};
}

TeacherForcing TeacherForcing::linear(double start, double end, std::int64_t steps) {
  KILN_CHECK(start >= 0 && start <= 1 && end >= 0 && end <= 1 && steps > 0,
             "TeacherForcing::linear: start and end must be in [0, 1] and steps positive, got {}, {}, {}", start, end, steps);
  return {Kind::Linear, start, end, steps};
}

TeacherForcing TeacherForcing::exponential(double k) {
  KILN_CHECK(k > 0 && k < 1, "TeacherForcing::exponential: k must be in (0, 1), got {}", k);
  return {Kind::Exponential, k, 0, 0};
}

TeacherForcing TeacherForcing::inverse_sigmoid(double k) {
  KILN_CHECK(k >= 1, "TeacherForcing::inverse_sigmoid: k must be at least 1, got {}", k);
  return {Kind::InverseSigmoid, k, 0, 0};
}

double TeacherForcing::ratio(std::int64_t step) const {
  const double s = static_cast<double>(std::max<std::int64_t>(step, 0));
  switch (kind_) {
    case Kind::Constant: return a_;
    case Kind::Linear: return a_ + (b_ - a_) * std::min(1.0, s / static_cast<double>(steps_));
    case Kind::Exponential: return std::pow(a_, s);
    case Kind::InverseSigmoid: return a_ / (a_ + std::exp(std::min(s / a_, 700.0)));
  }
  return 1;
}

std::string TeacherForcing::describe() const {
  switch (kind_) {
    case Kind::Constant: return fmt::format("constant({:g})", a_);
    case Kind::Linear: return fmt::format("linear({:g} -> {:g} over {} steps)", a_, b_, steps_);
    case Kind::Exponential: return fmt::format("exponential({:g}^step)", a_);
    case Kind::InverseSigmoid: return fmt::format("inverse_sigmoid(k={:g})", a_);
  }
  return "?";
}

}  // namespace kiln::nn

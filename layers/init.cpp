#include "layers/init.hpp"

#include <cmath>
#include <cstring>
#include <vector>

namespace kiln::nn::init {

std::pair<std::int64_t, std::int64_t> fans(const Shape& s) {
  KILN_CHECK(s.rank() >= 1, "init: fan in/out need at least one dimension, got shape {}", s);
  if (s.rank() == 1) return {s[0], s[0]};
  std::int64_t field = 1;
  for (int i = 2; i < s.rank(); ++i) field *= s[i];
  return {s[1] * field, s[0] * field};
}

Tensor uniform(const Shape& s, double low, double high, DType dtype, Generator* gen) {
  return kiln::uniform(s, low, high, dtype, gen);
}
Tensor normal(const Shape& s, double mean, double stddev, DType dtype, Generator* gen) {
  return kiln::normal(s, mean, stddev, dtype, gen);
}
Tensor zeros(const Shape& s, DType dtype) { return kiln::zeros(s, dtype); }
Tensor ones(const Shape& s, DType dtype) { return kiln::ones(s, dtype); }

Tensor xavier_uniform(const Shape& s, double gain, DType dtype, Generator* gen) {
  const auto [in, out] = fans(s);
  const double a = gain * std::sqrt(6.0 / static_cast<double>(in + out));
  return kiln::uniform(s, -a, a, dtype, gen);
}

Tensor xavier_normal(const Shape& s, double gain, DType dtype, Generator* gen) {
  const auto [in, out] = fans(s);
  return kiln::normal(s, 0, gain * std::sqrt(2.0 / static_cast<double>(in + out)), dtype, gen);
}

Tensor kaiming_uniform(const Shape& s, DType dtype, Generator* gen) {
  const double b = std::sqrt(2.0) * std::sqrt(3.0 / static_cast<double>(fans(s).first));
  return kiln::uniform(s, -b, b, dtype, gen);
}

Tensor kaiming_normal(const Shape& s, DType dtype, Generator* gen) {
  return kiln::normal(s, 0, std::sqrt(2.0 / static_cast<double>(fans(s).first)), dtype, gen);
}

Tensor orthogonal(const Shape& s, double gain, DType dtype, Generator* gen) {
  KILN_CHECK(s.rank() >= 2, "orthogonal: needs at least 2 dimensions, got shape {}", s);
  const std::int64_t rows = s[0], cols = s.numel() / std::max<std::int64_t>(rows, 1);
  // Orthonormalise the rows (or columns, whichever are fewer) of a Gaussian matrix with modified
  // Gram-Schmidt; the sign convention makes the result distributed uniformly (Haar).
  const bool by_rows = rows <= cols;
  const std::int64_t n = by_rows ? rows : cols, len = by_rows ? cols : rows;
  std::vector<double> q = kiln::normal({n, len}, 0, 1, kFloat64, gen).to_vector();
  for (std::int64_t i = 0; i < n; ++i) {
    double* qi = q.data() + i * len;
    for (std::int64_t j = 0; j < i; ++j) {
      const double* qj = q.data() + j * len;
      double dot = 0;
      for (std::int64_t k = 0; k < len; ++k) dot += qi[k] * qj[k];
      for (std::int64_t k = 0; k < len; ++k) qi[k] -= dot * qj[k];
    }
    double norm = 0;
    for (std::int64_t k = 0; k < len; ++k) norm += qi[k] * qi[k];
    norm = std::sqrt(norm);
    KILN_CHECK(norm > 1e-12, "orthogonal: degenerate random draw; try another seed");
    for (std::int64_t k = 0; k < len; ++k) qi[k] /= norm;
  }
  std::vector<double> out(static_cast<std::size_t>(rows * cols));
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c)
      out[static_cast<std::size_t>(r * cols + c)] = gain * (by_rows ? q[static_cast<std::size_t>(r * len + c)]
                                                                    : q[static_cast<std::size_t>(c * len + r)]);
  return from_data(out, s).to(dtype);
}

void lstm_forget_bias_(Tensor& bias, double value) {
  KILN_CHECK(bias.dim() == 1 && bias.size(0) % 4 == 0 && is_floating(bias.dtype()),
             "lstm_forget_bias_: expected a float LSTM bias of shape [4 * hidden], got {} {}", bias.dtype(), bias.shape());
  const std::int64_t h = bias.size(0) / 4;
  std::vector<double> v = bias.to_vector();
  for (std::int64_t i = h; i < 2 * h; ++i) v[static_cast<std::size_t>(i)] = value;
  Tensor filled = from_data(v, bias.shape()).to(bias.dtype());
  std::memcpy(bias.raw_data(), filled.raw_data(), bias.nbytes());
}

}  // namespace kiln::nn::init

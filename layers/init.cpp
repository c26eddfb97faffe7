#include "layers/init.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include <xtensor/xadapt.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor-blas/xlinalg.hpp>

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
  // As PyTorch's nn.init.orthogonal_: the reduced QR (LAPACK, through xt::linalg) of a tall Gaussian
  // matrix [len, n], n = the fewer of rows and columns; Q's columns times the signs of R's diagonal are
  // distributed uniformly (Haar). Q, or its transpose, is the [rows, cols] result.
  const bool by_rows = rows <= cols;
  const std::int64_t n = by_rows ? rows : cols, len = by_rows ? cols : rows;
  const std::vector<double> draw = kiln::normal({len, n}, 0, 1, kFloat64, gen).to_vector();
  xt::xtensor<double, 2> a = xt::adapt(draw, std::vector<std::size_t>{static_cast<std::size_t>(len), static_cast<std::size_t>(n)});
  const auto [q, r] = xt::linalg::qr(a, xt::linalg::qrmode::reduced);
  std::vector<double> out(static_cast<std::size_t>(rows * cols));
  for (std::int64_t j = 0; j < n; ++j) {
    const double d = r(static_cast<std::size_t>(j), static_cast<std::size_t>(j));
    KILN_CHECK(std::abs(d) > 1e-12, "orthogonal: degenerate random draw; try another seed");
    const double sign = d > 0 ? 1.0 : -1.0;
    for (std::int64_t k = 0; k < len; ++k) {
      const double v = gain * sign * q(static_cast<std::size_t>(k), static_cast<std::size_t>(j));
      out[static_cast<std::size_t>(by_rows ? j * cols + k : k * cols + j)] = v;
    }
  }
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

#pragma once
// Initialisers, as torch.nn.init. Each returns a fresh tensor; fan_in/fan_out follow PyTorch
// (for a weight [out, in, ...]: fan_in = in * receptive field, fan_out = out * receptive field).
// All draw from `gen`, or the default generator (kiln::manual_seed) when it is null.

#include "tensor/random.hpp"

namespace kiln::nn::init {

Tensor uniform(const Shape& shape, double low, double high, DType dtype = kFloat32, Generator* gen = nullptr);
Tensor normal(const Shape& shape, double mean, double stddev, DType dtype = kFloat32, Generator* gen = nullptr);
Tensor zeros(const Shape& shape, DType dtype = kFloat32);
Tensor ones(const Shape& shape, DType dtype = kFloat32);
/// U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010).
Tensor xavier_uniform(const Shape& shape, double gain = 1, DType dtype = kFloat32, Generator* gen = nullptr);
/// N(0, s^2), s = gain * sqrt(2 / (fan_in + fan_out)).
Tensor xavier_normal(const Shape& shape, double gain = 1, DType dtype = kFloat32, Generator* gen = nullptr);
/// U(-b, b), b = sqrt(2) * sqrt(3 / fan_in) (He et al., 2015; ReLU gain, fan_in mode).
Tensor kaiming_uniform(const Shape& shape, DType dtype = kFloat32, Generator* gen = nullptr);
/// N(0, s^2), s = sqrt(2 / fan_in).
Tensor kaiming_normal(const Shape& shape, DType dtype = kFloat32, Generator* gen = nullptr);
/// A (semi-)orthogonal matrix [rows, cols...] times gain (Saxe et al., 2014): QR of a Gaussian matrix.
Tensor orthogonal(const Shape& shape, double gain = 1, DType dtype = kFloat32, Generator* gen = nullptr);
/// Sets the forget-gate quarter [H, 2H) of an LSTM bias [4H] (gate order i, f, g, o) to `value`.
void lstm_forget_bias_(Tensor& bias, double value = 1.0);

/// fan_in and fan_out of a weight shape, as PyTorch computes them.
std::pair<std::int64_t, std::int64_t> fans(const Shape& shape);

}  // namespace kiln::nn::init

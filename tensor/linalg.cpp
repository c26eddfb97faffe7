#include "tensor/linalg.hpp"

#include <algorithm>
#include <cmath>

#include <xtensor/xadapt.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor-blas/xlinalg.hpp>

#include "tensor/error.hpp"
#include "tensor/tensor.hpp"

namespace kiln::linalg {
namespace {

xt::xtensor<double, 2> matrix(const Tensor& a, const char* who) {
  KILN_CHECK(a.defined() && a.dim() == 2, "{}: expected a matrix, got {}", who, a.defined() ? a.shape() : Shape{});
  KILN_CHECK(a.dtype() == kFloat32 || a.dtype() == kFloat64, "{}: expected a float matrix, got {}", who, a.dtype());
  const std::vector<double> v = a.to_vector();
  for (double x : v) KILN_CHECK(std::isfinite(x), "{}: the matrix {} holds {}", who, a.shape(), x);
  return xt::adapt(v, std::vector<std::size_t>{static_cast<std::size_t>(a.size(0)), static_cast<std::size_t>(a.size(1))});
}

}  // namespace

std::vector<double> svdvals(const Tensor& a) {
  xt::xtensor<double, 2> m = matrix(a, "svdvals");
  if (m.size() == 0) return {};
  const auto [u, s, vt] = xt::linalg::svd(m, /*full_matrices=*/false, /*compute_uv=*/false);
  std::vector<double> out(s.begin(), s.end());
  std::sort(out.rbegin(), out.rend());
  return out;
}

std::vector<std::complex<double>> eigvals(const Tensor& a) {
  KILN_CHECK(a.defined() && a.dim() == 2 && a.size(0) == a.size(1), "eigvals: expected a square matrix, got {}",
             a.defined() ? a.shape() : Shape{});
  xt::xtensor<double, 2> m = matrix(a, "eigvals");
  if (m.size() == 0) return {};
  const auto e = xt::linalg::eigvals(m);
  return std::vector<std::complex<double>>(e.begin(), e.end());
}

double spectral_radius(const Tensor& a) {
  double r = 0;
  for (const auto& z : eigvals(a)) r = std::max(r, std::abs(z));
  return r;
}

}  // namespace kiln::linalg

#pragma once
// Linear algebra on tensors by LAPACK, through xtensor-blas's xt::linalg: spectra for instruments and
// initialisers (not recorded on the tape; computed in float64). As torch.linalg's svdvals and eigvals.
//
//   std::vector<double> s = kiln::linalg::svdvals(w_hh);         // descending
//   double rho = kiln::linalg::spectral_radius(w_hh);            // max |eigenvalue|

#include <complex>
#include <vector>

namespace kiln {
class Tensor;
}

namespace kiln::linalg {

/// The singular values of a matrix [m, n], largest first (min(m, n) of them).
std::vector<double> svdvals(const Tensor& a);
/// The eigenvalues of a square matrix [n, n], in LAPACK's order.
std::vector<std::complex<double>> eigvals(const Tensor& a);
/// max |eigenvalue| of a square matrix.
double spectral_radius(const Tensor& a);

}  // namespace kiln::linalg

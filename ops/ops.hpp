#pragma once
// The catalogue of Kiln's generic differentiable ops: one declaration per op with its math line.
// Every op works on float32 and float64, records itself on the tape when an input requires grad, and
// throws kiln::Error naming the op and the offending shapes on bad input. Binary elementwise ops
// broadcast as NumPy does; their gradients are summed back to each input's shape.
// tests/ops/gradcheck_table_test.cpp holds a gradient-check row for every op declared here.

#include <cstdint>
#include <optional>
#include <vector>

#include "autograd/variable.hpp"

namespace kiln {

using Axes = std::vector<std::int64_t>;

enum class Reduction { None, Mean, Sum };

// ---- Elementwise, binary (broadcasting) -------------------------------------------------------
Variable add(const Variable& a, const Variable& b);       // y = a + b
Variable sub(const Variable& a, const Variable& b);       // y = a - b
Variable mul(const Variable& a, const Variable& b);       // y = a * b
Variable div(const Variable& a, const Variable& b);       // y = a / b; db = -dy * a / b^2
Variable pow(const Variable& a, const Variable& b);       // y = a^b; da = dy b a^(b-1), db = dy y ln a
Variable maximum(const Variable& a, const Variable& b);   // y = max(a, b); ties send dy to a
Variable minimum(const Variable& a, const Variable& b);   // y = min(a, b); ties send dy to a
Variable where(const Variable& mask, const Variable& a, const Variable& b);  // y = mask ? a : b

// ---- Elementwise with a scalar ----------------------------------------------------------------
Variable add(const Variable& a, double s);                // y = a + s
Variable sub(double s, const Variable& a);                // y = s - a
Variable mul(const Variable& a, double s);                // y = a * s
Variable div(double s, const Variable& a);                // y = s / a; da = -dy s / a^2
Variable pow(const Variable& a, double p);                // y = a^p; da = dy p a^(p-1)
Variable masked_fill(const Variable& a, const Variable& mask, double value);  // y = mask ? value : a

// ---- Elementwise, unary -----------------------------------------------------------------------
Variable neg(const Variable& x);                          // y = -x
Variable exp(const Variable& x);                          // y = e^x; dx = dy y
Variable log(const Variable& x);                          // y = ln x; dx = dy / x
Variable sqrt(const Variable& x);                         // y = sqrt x; dx = dy / (2 y)
Variable abs(const Variable& x);                          // y = |x|; dx = dy sign(x)
Variable tanh(const Variable& x);                         // y = tanh x; dx = dy (1 - y^2)
Variable sigmoid(const Variable& x);                      // y = 1 / (1 + e^-x); dx = dy y (1 - y)
Variable relu(const Variable& x);                         // y = max(x, 0); dx = dy [x > 0]
Variable gelu(const Variable& x);                         // y = x Phi(x); dx = dy (Phi(x) + x phi(x))
Variable clamp(const Variable& x, double lo, double hi);  // y = min(max(x, lo), hi); dx = dy [lo<=x<=hi]

// ---- Linear algebra ---------------------------------------------------------------------------
/// [..., m, k] x [..., k, n] -> [..., m, n], batch dims broadcast; 1-D operands as in numpy.matmul.
Variable matmul(const Variable& a, const Variable& b);    // C = A B; dA = dC B^T, dB = A^T dC
/// PyTorch's layout: x [..., in], weight [out, in], bias [out] -> [..., out].
Variable linear(const Variable& x, const Variable& weight, const Variable& bias = Variable());  // y = x W^T + b

// ---- Reductions (axes may be negative; empty axes = all) ------------------------------------
Variable sum(const Variable& x, const Axes& axes = {}, bool keepdim = false);        // dx = broadcast(dy)
Variable mean(const Variable& x, const Axes& axes = {}, bool keepdim = false);       // dx = broadcast(dy) / n
Variable max(const Variable& x, const Axes& axes = {}, bool keepdim = false);        // dx = dy at the first arg-max
Variable logsumexp(const Variable& x, const Axes& axes = {}, bool keepdim = false);  // dx = dy softmax(x)
/// Variance with Bessel's correction when unbiased (PyTorch's default).
Variable var(const Variable& x, const Axes& axes = {}, bool unbiased = true, bool keepdim = false);  // dx = dy 2 (x - m) / (n - c)

// ---- Shape ------------------------------------------------------------------------------------
Variable reshape(const Variable& x, const std::vector<std::int64_t>& shape);  // one dim may be -1
Variable flatten(const Variable& x, std::int64_t start = 0, std::int64_t end = -1);
Variable transpose(const Variable& x, std::int64_t dim0, std::int64_t dim1);
Variable permute(const Variable& x, const std::vector<std::int64_t>& dims);   // dx = permute(dy, dims^-1)
Variable squeeze(const Variable& x, std::optional<std::int64_t> dim = std::nullopt);
Variable unsqueeze(const Variable& x, std::int64_t dim);
Variable concat(const std::vector<Variable>& xs, std::int64_t dim);  // dx_i = slice of dy
Variable stack(const std::vector<Variable>& xs, std::int64_t dim);   // new axis at dim
/// Pieces of `size` along dim (the last may be smaller).
std::vector<Variable> split(const Variable& x, std::int64_t size, std::int64_t dim);
/// `chunks` pieces as equal as possible (as torch.chunk).
std::vector<Variable> chunk(const Variable& x, std::int64_t chunks, std::int64_t dim);
/// Elements start, start+step, ... < end along dim (Python slicing, negative indices allowed).
Variable slice(const Variable& x, std::int64_t dim, std::int64_t start, std::int64_t end, std::int64_t step = 1);
Variable narrow(const Variable& x, std::int64_t dim, std::int64_t start, std::int64_t length);
/// Rows of x along dim at int64 `index` (1-D); dx scatters dy back, adding repeats.
Variable index_select(const Variable& x, std::int64_t dim, const Variable& index);
/// y[i][j] = x[i][index[i][j]] along dim (torch.gather); index has x's rank.
Variable gather(const Variable& x, std::int64_t dim, const Variable& index);
/// Embedding lookup: weight [num, dim], int64 ids of any shape -> ids.shape + [dim]; rows looked
/// up at padding_idx (if >= 0) get no gradient, as in PyTorch.
Variable embedding(const Variable& weight, const Variable& ids, std::int64_t padding_idx = -1);  // dW[id] += dy
Variable flip(const Variable& x, const Axes& dims);

// ---- Neural-network functions -----------------------------------------------------------------
Variable softmax(const Variable& x, std::int64_t dim);      // dx = y (dy - sum(dy y))
Variable log_softmax(const Variable& x, std::int64_t dim);  // dx = dy - softmax(x) sum(dy)
/// Zeroes each element with probability p and scales the rest by 1/(1-p); identity unless training.
Variable dropout(const Variable& x, double p, bool training, Generator* gen = nullptr);
/// Normalises over the trailing dims `normalized_shape`, then y = x_hat * weight + bias.
Variable layer_norm(const Variable& x, const Shape& normalized_shape, const Variable& weight = Variable(),
                    const Variable& bias = Variable(), double eps = 1e-5);

// ---- Losses (target dtypes: float for mse/bce, int64 class indices for nll/cross_entropy) -----
Variable mse_loss(const Variable& input, const Variable& target, Reduction reduction = Reduction::Mean);
/// Stable: max(x, 0) - x t + log(1 + e^-|x|).
Variable binary_cross_entropy_with_logits(const Variable& logits, const Variable& target,
                                          Reduction reduction = Reduction::Mean);
/// log-probabilities [N, C] (or [N, C, d...]) and int64 targets [N] (or [N, d...]).
Variable nll_loss(const Variable& log_probs, const Variable& target, std::int64_t ignore_index = -100,
                  Reduction reduction = Reduction::Mean);
/// nll_loss(log_softmax(logits, 1), target).
Variable cross_entropy(const Variable& logits, const Variable& target, std::int64_t ignore_index = -100,
                       Reduction reduction = Reduction::Mean);

// ---- Operators (aliases of the ops above) ----------------------------------------------------
Variable operator+(const Variable& a, const Variable& b);
Variable operator-(const Variable& a, const Variable& b);
Variable operator*(const Variable& a, const Variable& b);
Variable operator/(const Variable& a, const Variable& b);
Variable operator-(const Variable& a);
Variable operator+(const Variable& a, double s);
Variable operator+(double s, const Variable& a);
Variable operator-(const Variable& a, double s);
Variable operator-(double s, const Variable& a);
Variable operator*(const Variable& a, double s);
Variable operator*(double s, const Variable& a);
Variable operator/(const Variable& a, double s);
Variable operator/(double s, const Variable& a);

}  // namespace kiln

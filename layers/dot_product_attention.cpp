#include "layers/dot_product_attention.hpp"

#include <cmath>
#include <limits>

#include "ops/ops.hpp"

namespace kiln::nn {
namespace {

// Note [Attention masks]: masked scores take this value rather than -inf.
constexpr double kMasked = std::numeric_limits<float>::lowest();

// Applies one mask (bool: masked out where true; float: added) to scores [..., Lq, Lk].
Variable apply_mask(const Variable& scores, const Variable& mask, const char* who, const char* what) {
  if (!mask.defined()) return scores;
  KILN_CHECK(mask.dtype() == kBool || is_floating(mask.dtype()),
             "{}: {} must be bool (true = masked out) or float (added to the scores), got {}", who, what, mask.dtype());
  Shape b;
  try {
    b = broadcast_shapes(scores.shape(), mask.shape(), who);
  } catch (const Error&) {
    b = Shape{};
  }
  KILN_CHECK(b == scores.shape(), "{}: {} of shape {} does not broadcast to the attention scores' shape {}", who, what,
             mask.shape(), scores.shape());
  if (mask.dtype() == kBool) return masked_fill(scores, mask, kMasked);
  const Variable m = mask.dtype() == scores.dtype() || mask.requires_grad() ? mask : Variable(mask.value().to(scores.dtype()));
  return scores + m;
}

// Query i of Lq sits at position Lk - Lq + i and may not see later keys (Note [Attention masks]).
Tensor causal_mask_aligned(std::int64_t lq, std::int64_t lk) {
  std::vector<bool> m(static_cast<std::size_t>(lq * lk));
  for (std::int64_t i = 0; i < lq; ++i)
    for (std::int64_t j = lk - lq + i + 1; j < lk; ++j) m[static_cast<std::size_t>(i * lk + j)] = true;
  return from_data(m, {lq, lk});
}

}  // namespace

AttentionOutput attend(const Variable& q, const Variable& k, const Variable& v, const NamedMasks& masks, bool is_causal,
                       double dropout_p, bool training, std::optional<double> scale, Generator* gen, const char* who) {
  KILN_CHECK(q.defined() && k.defined() && v.defined(), "{}: query, key and value must all be defined", who);
  KILN_CHECK(q.dim() >= 2 && k.dim() >= 2 && v.dim() >= 2,
             "{}: query, key and value need at least 2 dims [..., L, E], got {}, {} and {}", who, q.shape(), k.shape(),
             v.shape());
  KILN_CHECK(q.size(-1) == k.size(-1), "{}: query {} and key {} differ in their last dim", who, q.shape(), k.shape());
  KILN_CHECK(k.size(-2) == v.size(-2), "{}: key {} and value {} differ in length (dim -2)", who, k.shape(), v.shape());
  KILN_CHECK(q.dtype() == k.dtype() && k.dtype() == v.dtype() && is_floating(q.dtype()),
             "{}: query, key and value must share one float dtype, got {}, {} and {}", who, q.dtype(), k.dtype(), v.dtype());
  KILN_CHECK(dropout_p >= 0 && dropout_p < 1, "{}: dropout must be in [0, 1), got {}", who, dropout_p);
  const std::int64_t lq = q.size(-2), lk = k.size(-2);
  KILN_CHECK(!is_causal || lq <= lk, "{}: a causal mask needs no more queries ({}) than keys ({})", who, lq, lk);
  KILN_CHECK(!scale || std::isfinite(*scale), "{}: scale must be a finite number, got {}", who, scale ? *scale : 0.0);
  const double s = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  Variable scores = mul(matmul(q, transpose(k, -1, -2)), s);
  // Float masks add first, bool masks then set the lowest value: a masked score is exactly that value
  // whatever else applies (the fused kernel's order too).
  for (const bool bool_pass : {false, true})
    for (const auto& [m, what] : masks)
      if (m.defined() && (m.dtype() == kBool) == bool_pass) scores = apply_mask(scores, m, who, what);
  if (is_causal) scores = masked_fill(scores, Variable(causal_mask_aligned(lq, lk)), kMasked);
  Variable weights = softmax(scores, -1);
  const Variable used = training && dropout_p > 0 ? dropout(weights, dropout_p, true, gen) : weights;
  return {matmul(used, v), weights};
}

AttentionOutput scaled_dot_product_attention(const Variable& q, const Variable& k, const Variable& v,
                                             const Variable& mask, bool is_causal, double dropout_p, bool training,
                                             std::optional<double> scale, Generator* gen) {
  return attend(q, k, v, {{mask, "mask"}}, is_causal, dropout_p, training, scale, gen, "scaled_dot_product_attention");
}

Tensor causal_mask(std::int64_t length) {
  KILN_CHECK(length >= 0, "causal_mask: length must be non-negative, got {}", length);
  return causal_mask_aligned(length, length);
}

}  // namespace kiln::nn

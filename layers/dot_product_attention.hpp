#pragma once
// Scaled dot-product attention in generic ops: softmax(q k^T scale + masks) v, the core of multi-head
// attention (sequence/attention.hpp) and the reference the fused "sdpa" kernel is checked against.
//
// Note [Attention masks]: boolean masks say true = masked out (not attended), as in PyTorch; float
// masks are added to the scores. attn_mask is [Lq, Lk] or [B * num_heads, Lq, Lk]; key_padding_mask is
// [B, Lk]. A causal mask lets query i see keys up to its own position, where the Lq queries are the
// last Lq of the Lk positions (Lq == Lk without a cache), so one new query over a cache of earlier keys
// sees them all. Masked scores are set to the lowest finite value, not -inf: a partly masked row gives
// exactly the same weights (exp underflows to 0), and a row with every key masked attends uniformly
// instead of turning into NaN and poisoning the loss.

#include <optional>
#include <utility>
#include <vector>

#include "autograd/variable.hpp"
#include "tensor/random.hpp"

namespace kiln::nn {

struct AttentionOutput {
  Variable output;   ///< attended values
  Variable weights;  ///< softmax weights (before dropout), undefined unless asked for
};

/// softmax(q k^T * scale + mask) v over the last two dims: q [..., Lq, E], k [..., Lk, E],
/// v [..., Lk, Ev] -> [..., Lq, Ev]. scale defaults to 1/sqrt(E). mask: bool (true = masked out) or
/// float (added), broadcastable to [..., Lq, Lk] (Note [Attention masks]). Dropout acts on the weights
/// while training.
AttentionOutput scaled_dot_product_attention(const Variable& q, const Variable& k, const Variable& v,
                                             const Variable& mask = Variable(), bool is_causal = false,
                                             double dropout_p = 0, bool training = false,
                                             std::optional<double> scale = std::nullopt, Generator* gen = nullptr);

/// A bool [L, L] mask with true above the diagonal: position i may not attend to j > i (PyTorch's
/// generate_square_subsequent_mask, as a bool mask).
Tensor causal_mask(std::int64_t length);

/// Masks with their names for messages ("attn_mask", "key_padding_mask").
using NamedMasks = std::vector<std::pair<Variable, const char*>>;
/// scaled_dot_product_attention with several masks (float masks added first, then bool masks), `who`
/// naming the caller in messages: what MultiheadAttention runs.
AttentionOutput attend(const Variable& q, const Variable& k, const Variable& v, const NamedMasks& masks, bool is_causal,
                       double dropout_p, bool training, std::optional<double> scale, Generator* gen, const char* who);

}  // namespace kiln::nn

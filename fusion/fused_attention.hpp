#pragma once
// Running a fused attention kernel (kiln/plugin.h, interface version 2) as one tape node. Operands are
// strided views into contiguous variables, so multi-head attention hands the kernel its packed q/k/v
// projection as it is and gets the output back in [L, B, E] without head split or merge copies.
//
//   auto qkv = kiln::linear(x, in_proj_weight, in_proj_bias);                  // x [L, B, E]
//   auto q = AttentionView::heads_of(qkv, /*batch_first=*/false, 0, heads, d); // k at E, v at 2E
//   auto r = run_fused_attention(*Registry::global().attention(), q, k, v, options, x.shape());

#include <array>
#include <cstdint>
#include <vector>

#include "autograd/variable.hpp"
#include "plugins/registry.hpp"

namespace kiln::plugins {

/// A [batch, heads, length, features] view: element (b, h, i, d) is base's flat element
/// offset + b*strides[0] + h*strides[1] + i*strides[2] + d*strides[3].
struct AttentionView {
  Variable base;
  std::int64_t offset = 0;
  std::array<std::int64_t, 4> shape{}, strides{};
  /// All of a contiguous [B, H, L, D] variable.
  static AttentionView contiguous(const Variable& x);
  /// Features [offset, offset + heads * head_dim) of x [L, B, F] ([B, L, F] with batch_first), split
  /// into heads: the q, k or v part of a packed projection.
  static AttentionView heads_of(const Variable& x, bool batch_first, std::int64_t offset, std::int64_t heads,
                                std::int64_t head_dim);
};

struct FusedAttentionOptions {
  std::vector<Tensor> masks;  ///< at most 2; bool (true = masked out) or float (added); broadcast to [B, H, Lq, Lk]
  bool causal = false;
  double scale = 1;
  double dropout_p = 0;       ///< 0 unless training
  std::uint64_t seed = 0;     ///< for the dropout mask
  bool need_weights = false;  ///< also return the softmax weights [B, H, Lq, Lk] (not differentiable)
};

struct FusedAttentionOutput {
  Variable out;    ///< shaped out_shape; the kernel writes head h of batch b at the strides of heads_of
  Tensor weights;  ///< when need_weights
};

/// Empty when `kernel` runs this problem; otherwise why not.
std::string fused_attention_refusal(const AttentionKernel& kernel, const AttentionView& q, const AttentionView& k,
                                    const AttentionView& v, const FusedAttentionOptions& options);

/// One tape node: softmax(q k^T scale + masks) v. out_shape is [Lq, B, H*Dv] (or [B, Lq, H*Dv] with
/// out_batch_first). q, k and v may share a base (a packed projection) when their feature ranges do
/// not overlap. Throws naming the plugin and kernel when the kernel fails or refuses.
FusedAttentionOutput run_fused_attention(const AttentionKernel& kernel, const AttentionView& q, const AttentionView& k,
                                         const AttentionView& v, const FusedAttentionOptions& options, bool out_batch_first);

}  // namespace kiln::plugins

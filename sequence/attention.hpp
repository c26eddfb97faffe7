#pragma once
// Attention: scaled dot-product attention and PyTorch's nn.MultiheadAttention (same parameter names,
// layouts, masks and defaults), with a key/value cache for incremental decoding.
//
//   kiln::nn::MultiheadAttention mha(kiln::nn::MultiheadAttentionOptions(256, 8).batch_first(true));
//   auto [out, weights] = mha.forward(x, x, x, kiln::nn::AttentionForwardOptions().is_causal(true));
//   // out [B, L, 256]; weights [B, L, L], averaged over heads (average_attn_weights(false): [B, 8, L, L])
//
// Note [Fused attention]: with impl Auto, MultiheadAttention hands the core softmax(q k^T / sqrt(d) +
// masks) v to the registry's "sdpa" kernel (fusion/fused_attention.hpp), which reads q, k and v straight
// from the packed projection and writes the output in the input's layout. It runs when the kernel
// supports the call and the weights are not asked for while gradients are recorded (the fused node's
// one output is the attended values; PyTorch's fast path has the same rule); otherwise the generic ops.
//
#include <optional>

#include "layers/dot_product_attention.hpp"
#include "layers/impl.hpp"
#include "layers/linear.hpp"

namespace kiln::nn {

/// Keys and values of the positions seen so far, projected and split into heads: [B, num_heads, L, head_dim].
/// An empty cache grows by the new positions at every forward call it is given to; a frozen cache
/// (cross-attention over a fixed memory) is filled once and then reused as it is.
struct KVCache {
  Variable keys, values;
  bool frozen = false;  ///< set by the caller for cross-attention: project key/value once, then reuse
  std::int64_t length() const { return keys.defined() ? keys.size(2) : 0; }
  void clear() { keys = values = Variable(); }
};

struct MultiheadAttentionOptions {
  MultiheadAttentionOptions(std::int64_t embed_dim, std::int64_t num_heads) : embed_dim_(embed_dim), num_heads_(num_heads) {}
  /// Dropout on the attention weights while training.
  MultiheadAttentionOptions& dropout(double p) { dropout_ = p; return *this; }
  MultiheadAttentionOptions& bias(bool on) { bias_ = on; return *this; }
  /// Key and value feature sizes when they differ from embed_dim: the projections are then separate
  /// parameters q_proj_weight, k_proj_weight, v_proj_weight, as in PyTorch.
  MultiheadAttentionOptions& kdim(std::int64_t d) { kdim_ = d; return *this; }
  MultiheadAttentionOptions& vdim(std::int64_t d) { vdim_ = d; return *this; }
  /// [B, L, E] instead of PyTorch's default [L, B, E].
  MultiheadAttentionOptions& batch_first(bool on) { batch_first_ = on; return *this; }
  /// Auto (the default) runs the registry's "sdpa" attention kernel when it supports the call and the
  /// weights are not needed with gradients (Note [Fused attention]); Generic always runs the ops.
  MultiheadAttentionOptions& impl(Impl i) { impl_ = i; return *this; }
  std::int64_t embed_dim_, num_heads_;
  double dropout_ = 0;
  bool bias_ = true;
  std::int64_t kdim_ = 0, vdim_ = 0;  // 0: embed_dim
  bool batch_first_ = false;
  Impl impl_ = Impl::Auto;
};

/// What one forward call attends with (PyTorch's MultiheadAttentionForwardFuncOptions).
struct AttentionForwardOptions {
  AttentionForwardOptions& attn_mask(Variable m) { attn_mask_ = std::move(m); return *this; }
  AttentionForwardOptions& key_padding_mask(Variable m) { key_padding_mask_ = std::move(m); return *this; }
  AttentionForwardOptions& is_causal(bool on) { is_causal_ = on; return *this; }
  AttentionForwardOptions& need_weights(bool on) { need_weights_ = on; return *this; }
  AttentionForwardOptions& average_attn_weights(bool on) { average_attn_weights_ = on; return *this; }
  /// Incremental decoding: the new positions' keys and values are appended to the cache and the query
  /// attends over all of them (key_padding_mask, if any, then covers every cached position).
  AttentionForwardOptions& cache(KVCache* c) { cache_ = c; return *this; }
  Variable attn_mask_, key_padding_mask_;
  bool is_causal_ = false, need_weights_ = true, average_attn_weights_ = true;
  KVCache* cache_ = nullptr;
};

/// PyTorch's nn.MultiheadAttention. Parameters: in_proj_weight [3E, E] (rows q, k, v), in_proj_bias
/// [3E], out_proj.weight [E, E], out_proj.bias [E]; initialised as PyTorch (Xavier-uniform in_proj,
/// zero biases). Inputs [L, B, E] ([B, L, E] with batch_first; [L, E] unbatched).
class MultiheadAttention : public Module {
 public:
  explicit MultiheadAttention(MultiheadAttentionOptions options);
  MultiheadAttention(std::int64_t embed_dim, std::int64_t num_heads)
      : MultiheadAttention(MultiheadAttentionOptions(embed_dim, num_heads)) {}
  void reset() override;
  AttentionOutput forward(const Variable& query, const Variable& key, const Variable& value,
                          const AttentionForwardOptions& options = {});
  /// Self-attention without masks: forward(x, x, x).output.
  Variable forward(const Variable& x) override;
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::string extra_repr() const override;
  const MultiheadAttentionOptions& options() const { return options_; }
  std::int64_t head_dim() const { return options_.embed_dim_ / options_.num_heads_; }
  void set_impl(Impl impl) { options_.impl_ = impl; }
  /// Whether the last forward call ran the fused kernel, and if not, why.
  bool last_call_fused(std::string* why = nullptr) const {
    if (why != nullptr) *why = fused_refusal_;
    return fused_refusal_.empty();
  }

  Variable in_proj_weight, in_proj_bias, q_proj_weight, k_proj_weight, v_proj_weight;
  std::shared_ptr<Linear> out_proj;

 private:
  bool same_dims() const;
  // Projects [B, L, *] inputs into heads [B, H, L, d]; `which` 0, 1, 2 = q, k, v.
  Variable project(const Variable& x, int which) const;
  Variable split_heads(const Variable& x) const;
  // The fused path; returns false (with fused_refusal_ set) when it cannot run this call.
  bool forward_fused(const Variable& query, const Variable& key, const Variable& value,
                     const AttentionForwardOptions& options, AttentionOutput& result);
  MultiheadAttentionOptions options_;
  std::string fused_refusal_ = "not run yet";
};

}  // namespace kiln::nn

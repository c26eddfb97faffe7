#pragma once
// The Transformer (Vaswani et al., 2017) with PyTorch's modules, options, parameter names and defaults:
// TransformerEncoderLayer, TransformerDecoderLayer, their stacks and the full encoder-decoder.
//
//   using namespace kiln::nn;
//   auto layer = TransformerEncoderLayer(TransformerEncoderLayerOptions(256, 8).dim_feedforward(1024).batch_first(true));
//   TransformerEncoder encoder(layer, 6);                  // parameters layers.0.self_attn.in_proj_weight, ...
//   Variable y = encoder.forward(x, TransformerMasks().key_padding_mask(pad));
//
// Incremental decoding: TransformerDecoder::forward with a DecoderCache takes only the new target
// positions and keeps every layer's self-attention keys and values (and the memory's, projected once),
// giving the same outputs as running the whole prefix with a causal mask.

#include "layers/activation.hpp"
#include "sequence/attention.hpp"
#include "layers/layer_norm.hpp"
#include "layers/module_list.hpp"

namespace kiln::nn {

/// The feed-forward block's activation.
enum class FeedForwardActivation { ReLU, GELU };

struct TransformerLayerOptions {
  TransformerLayerOptions(std::int64_t d_model, std::int64_t nhead) : d_model_(d_model), nhead_(nhead) {}
  TransformerLayerOptions& dim_feedforward(std::int64_t d) { dim_feedforward_ = d; return *this; }
  TransformerLayerOptions& dropout(double p) { dropout_ = p; return *this; }
  TransformerLayerOptions& activation(FeedForwardActivation a) { activation_ = a; return *this; }
  TransformerLayerOptions& layer_norm_eps(double e) { layer_norm_eps_ = e; return *this; }
  /// [B, L, E] instead of PyTorch's default [L, B, E].
  TransformerLayerOptions& batch_first(bool on) { batch_first_ = on; return *this; }
  /// Pre-norm (x + f(norm(x))) instead of the original post-norm (norm(x + f(x))).
  TransformerLayerOptions& norm_first(bool on) { norm_first_ = on; return *this; }
  std::int64_t d_model_, nhead_;
  std::int64_t dim_feedforward_ = 2048;
  double dropout_ = 0.1;
  FeedForwardActivation activation_ = FeedForwardActivation::ReLU;
  double layer_norm_eps_ = 1e-5;
  bool batch_first_ = false, norm_first_ = false;
};
using TransformerEncoderLayerOptions = TransformerLayerOptions;
using TransformerDecoderLayerOptions = TransformerLayerOptions;

/// Masks for one call (Note [Attention masks] in sequence/attention.hpp): attention masks [Lq, Lk] or
/// [B * nhead, Lq, Lk], padding masks [B, L]; bool true = masked out, float added.
struct TransformerMasks {
  TransformerMasks& src_mask(Variable m) { src_mask_ = std::move(m); return *this; }
  TransformerMasks& src_key_padding_mask(Variable m) { src_key_padding_mask_ = std::move(m); return *this; }
  TransformerMasks& tgt_mask(Variable m) { tgt_mask_ = std::move(m); return *this; }
  TransformerMasks& tgt_key_padding_mask(Variable m) { tgt_key_padding_mask_ = std::move(m); return *this; }
  TransformerMasks& memory_mask(Variable m) { memory_mask_ = std::move(m); return *this; }
  TransformerMasks& memory_key_padding_mask(Variable m) { memory_key_padding_mask_ = std::move(m); return *this; }
  /// Causal self-attention for the target (the decoder), without building a mask.
  TransformerMasks& tgt_is_causal(bool on) { tgt_is_causal_ = on; return *this; }
  TransformerMasks& src_is_causal(bool on) { src_is_causal_ = on; return *this; }
  Variable src_mask_, src_key_padding_mask_, tgt_mask_, tgt_key_padding_mask_, memory_mask_, memory_key_padding_mask_;
  bool tgt_is_causal_ = false, src_is_causal_ = false;
};

/// Self-attention then a feed-forward block, each with a residual connection and layer norm.
/// Submodules: self_attn, linear1, dropout, linear2, norm1, norm2, dropout1, dropout2.
class TransformerEncoderLayer : public Module {
 public:
  explicit TransformerEncoderLayer(TransformerLayerOptions options);
  void reset() override;
  /// src [L, B, E] ([B, L, E] with batch_first); uses the masks' src_* fields.
  Variable forward(const Variable& src, const TransformerMasks& masks);
  Variable forward(const Variable& src) override { return forward(src, TransformerMasks()); }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::string extra_repr() const override;
  const TransformerLayerOptions& options() const { return options_; }

  std::shared_ptr<MultiheadAttention> self_attn;
  std::shared_ptr<Linear> linear1, linear2;
  std::shared_ptr<LayerNorm> norm1, norm2;
  std::shared_ptr<Dropout> dropout, dropout1, dropout2;

 private:
  TransformerLayerOptions options_;
};

/// One decoder layer's caches: its self-attention's growing keys/values and the memory's, fixed.
struct DecoderLayerCache {
  KVCache self_attn, cross_attn;
};

/// Masked self-attention, cross-attention over the encoder's memory, and a feed-forward block.
/// Submodules: self_attn, multihead_attn, linear1, dropout, linear2, norm1..3, dropout1..3.
class TransformerDecoderLayer : public Module {
 public:
  explicit TransformerDecoderLayer(TransformerLayerOptions options);
  void reset() override;
  /// tgt [T, B, E], memory [S, B, E] (batch-first with batch_first). With a cache, tgt holds only the new
  /// positions (their self-attention is causal over the cached ones; tgt_mask must then be empty).
  Variable forward(const Variable& tgt, const Variable& memory, const TransformerMasks& masks,
                   DecoderLayerCache* cache = nullptr);
  /// The weights of the cross-attention over memory from the last forward call, [B, T, S] (averaged
  /// over heads), when record_attention(true).
  void record_attention(bool on) { record_ = on; }
  const Variable& last_cross_attention() const { return last_cross_; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::string extra_repr() const override;
  const TransformerLayerOptions& options() const { return options_; }

  std::shared_ptr<MultiheadAttention> self_attn, multihead_attn;
  std::shared_ptr<Linear> linear1, linear2;
  std::shared_ptr<LayerNorm> norm1, norm2, norm3;
  std::shared_ptr<Dropout> dropout, dropout1, dropout2, dropout3;

 private:
  TransformerLayerOptions options_;
  bool record_ = false;
  Variable last_cross_;
};

/// num_layers copies of a layer ("layers.0", "layers.1", ...) and an optional final LayerNorm ("norm").
class TransformerEncoder : public Module {
 public:
  TransformerEncoder(const TransformerEncoderLayer& layer, std::int64_t num_layers, std::shared_ptr<LayerNorm> norm = nullptr);
  Variable forward(const Variable& src, const TransformerMasks& masks);
  Variable forward(const Variable& src) override { return forward(src, TransformerMasks()); }
  std::shared_ptr<Module> clone() const override;
  std::string extra_repr() const override;
  std::int64_t num_layers() const { return static_cast<std::int64_t>(layers->size()); }
  TransformerEncoderLayer& layer(std::int64_t i) const;

  std::shared_ptr<ModuleList> layers;
  std::shared_ptr<LayerNorm> norm;
};

/// Every decoder layer's cache, for TransformerDecoder::forward.
struct DecoderCache {
  std::vector<DecoderLayerCache> layers;
  /// Target positions decoded so far.
  std::int64_t length() const { return layers.empty() ? 0 : layers.front().self_attn.length(); }
  void clear() { layers.clear(); }
};

class TransformerDecoder : public Module {
 public:
  TransformerDecoder(const TransformerDecoderLayer& layer, std::int64_t num_layers, std::shared_ptr<LayerNorm> norm = nullptr);
  Variable forward(const Variable& tgt, const Variable& memory, const TransformerMasks& masks,
                   DecoderCache* cache = nullptr);
  std::shared_ptr<Module> clone() const override;
  std::string extra_repr() const override;
  std::int64_t num_layers() const { return static_cast<std::int64_t>(layers->size()); }
  TransformerDecoderLayer& layer(std::int64_t i) const;

  std::shared_ptr<ModuleList> layers;
  std::shared_ptr<LayerNorm> norm;
};

struct TransformerOptions {
  TransformerOptions(std::int64_t d_model = 512, std::int64_t nhead = 8) : layer_(d_model, nhead) {}
  TransformerOptions& num_encoder_layers(std::int64_t n) { num_encoder_layers_ = n; return *this; }
  TransformerOptions& num_decoder_layers(std::int64_t n) { num_decoder_layers_ = n; return *this; }
  TransformerOptions& dim_feedforward(std::int64_t d) { layer_.dim_feedforward(d); return *this; }
  TransformerOptions& dropout(double p) { layer_.dropout(p); return *this; }
  TransformerOptions& activation(FeedForwardActivation a) { layer_.activation(a); return *this; }
  TransformerOptions& layer_norm_eps(double e) { layer_.layer_norm_eps(e); return *this; }
  TransformerOptions& batch_first(bool on) { layer_.batch_first(on); return *this; }
  TransformerOptions& norm_first(bool on) { layer_.norm_first(on); return *this; }
  TransformerLayerOptions layer_;
  std::int64_t num_encoder_layers_ = 6, num_decoder_layers_ = 6;
};

/// PyTorch's nn.Transformer: encoder and decoder stacks, each with a final LayerNorm; every weight
/// matrix Xavier-uniform. Submodules: encoder, decoder.
class Transformer : public Module {
 public:
  explicit Transformer(TransformerOptions options = {});
  void reset() override;
  /// src [S, B, E], tgt [T, B, E] -> [T, B, E] (batch-first with batch_first).
  Variable forward(const Variable& src, const Variable& tgt, const TransformerMasks& masks = {});
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::string extra_repr() const override;
  const TransformerOptions& options() const { return options_; }

  std::shared_ptr<TransformerEncoder> encoder;
  std::shared_ptr<TransformerDecoder> decoder;

 private:
  TransformerOptions options_;
};

}  // namespace kiln::nn

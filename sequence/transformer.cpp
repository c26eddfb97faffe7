#include "sequence/transformer.hpp"

#include "layers/init.hpp"
#include "ops/ops.hpp"

namespace kiln::nn {
namespace {

void check_options(const TransformerLayerOptions& o, const char* who) {
  KILN_CHECK(o.d_model_ > 0 && o.nhead_ > 0 && o.dim_feedforward_ > 0,
             "{}: d_model, nhead and dim_feedforward must be positive, got {}, {} and {}", who, o.d_model_, o.nhead_,
             o.dim_feedforward_);
  KILN_CHECK(o.d_model_ % o.nhead_ == 0, "{}: d_model {} is not divisible by nhead {}", who, o.d_model_, o.nhead_);
  KILN_CHECK(o.dropout_ >= 0 && o.dropout_ < 1, "{}: dropout must be in [0, 1), got {}", who, o.dropout_);
}

std::shared_ptr<MultiheadAttention> make_attention(const TransformerLayerOptions& o) {
  return std::make_shared<MultiheadAttention>(
      MultiheadAttentionOptions(o.d_model_, o.nhead_).dropout(o.dropout_).batch_first(o.batch_first_));
}

std::shared_ptr<LayerNorm> make_norm(const TransformerLayerOptions& o) {
  return std::make_shared<LayerNorm>(LayerNormOptions({o.d_model_}).eps(o.layer_norm_eps_));
}

// linear2(dropout(activation(linear1(x))))
Variable feed_forward(const Variable& x, Linear& linear1, Dropout& dropout, Linear& linear2, FeedForwardActivation a) {
  const Variable h = linear1(x);
  return linear2(dropout(a == FeedForwardActivation::ReLU ? relu(h) : gelu(h)));
}

void check_input(const Variable& x, const TransformerLayerOptions& o, const char* who, const char* what) {
  KILN_CHECK(x.defined() && (x.dim() == 3 || x.dim() == 2) && x.size(-1) == o.d_model_,
             "{}(d_model={}): {} must be {} (or unbatched [L, E]) ending in d_model, got {}", who, o.d_model_, what,
             o.batch_first_ ? "[B, L, E]" : "[L, B, E]", x.defined() ? x.shape() : Shape{}, o.d_model_);
}

std::string layer_repr(const TransformerLayerOptions& o) {
  return fmt::format("d_model={}, nhead={}, dim_feedforward={}, dropout={}, activation={}{}{}", o.d_model_, o.nhead_,
                     o.dim_feedforward_, o.dropout_, o.activation_ == FeedForwardActivation::ReLU ? "relu" : "gelu",
                     o.norm_first_ ? ", norm_first=true" : "", o.batch_first_ ? ", batch_first=true" : "");
}

}  // namespace

// ---- Encoder layer ------------------------------------------------------------------------------

TransformerEncoderLayer::TransformerEncoderLayer(TransformerLayerOptions options)
    : Module("TransformerEncoderLayer"), options_(options) {
  check_options(options_, "TransformerEncoderLayer");
  reset();
}

void TransformerEncoderLayer::reset() {
  const auto& o = options_;
  self_attn = register_module("self_attn", make_attention(o));
  linear1 = register_module("linear1", std::make_shared<Linear>(o.d_model_, o.dim_feedforward_));
  dropout = register_module("dropout", std::make_shared<Dropout>(o.dropout_));
  linear2 = register_module("linear2", std::make_shared<Linear>(o.dim_feedforward_, o.d_model_));
  norm1 = register_module("norm1", make_norm(o));
  norm2 = register_module("norm2", make_norm(o));
  dropout1 = register_module("dropout1", std::make_shared<Dropout>(o.dropout_));
  dropout2 = register_module("dropout2", std::make_shared<Dropout>(o.dropout_));
}

Variable TransformerEncoderLayer::forward(const Variable& src, const TransformerMasks& masks) {
  check_input(src, options_, "TransformerEncoderLayer", "src");
  const auto attn = AttentionForwardOptions()
                        .attn_mask(masks.src_mask_)
                        .key_padding_mask(masks.src_key_padding_mask_)
                        .is_causal(masks.src_is_causal_)
                        .need_weights(false);
  auto sa = [&](const Variable& x) { return (*dropout1)(self_attn->forward(x, x, x, attn).output); };
  auto ff = [&](const Variable& x) {
    return (*dropout2)(feed_forward(x, *linear1, *dropout, *linear2, options_.activation_));
  };
  Variable x = src;
  if (options_.norm_first_) {
    x = x + sa((*norm1)(x));
    return x + ff((*norm2)(x));
  }
  x = (*norm1)(x + sa(x));
  return (*norm2)(x + ff(x));
}

std::string TransformerEncoderLayer::extra_repr() const { return layer_repr(options_); }

// ---- Decoder layer ------------------------------------------------------------------------------

TransformerDecoderLayer::TransformerDecoderLayer(TransformerLayerOptions options)
    : Module("TransformerDecoderLayer"), options_(options) {
  check_options(options_, "TransformerDecoderLayer");
  reset();
}

void TransformerDecoderLayer::reset() {
  const auto& o = options_;
  self_attn = register_module("self_attn", make_attention(o));
  multihead_attn = register_module("multihead_attn", make_attention(o));
  linear1 = register_module("linear1", std::make_shared<Linear>(o.d_model_, o.dim_feedforward_));
  dropout = register_module("dropout", std::make_shared<Dropout>(o.dropout_));
  linear2 = register_module("linear2", std::make_shared<Linear>(o.dim_feedforward_, o.d_model_));
  norm1 = register_module("norm1", make_norm(o));
  norm2 = register_module("norm2", make_norm(o));
  norm3 = register_module("norm3", make_norm(o));
  dropout1 = register_module("dropout1", std::make_shared<Dropout>(o.dropout_));
  dropout2 = register_module("dropout2", std::make_shared<Dropout>(o.dropout_));
  dropout3 = register_module("dropout3", std::make_shared<Dropout>(o.dropout_));
}

Variable TransformerDecoderLayer::forward(const Variable& tgt, const Variable& memory, const TransformerMasks& masks,
                                          DecoderLayerCache* cache) {
  const char* who = "TransformerDecoderLayer";
  check_input(tgt, options_, who, "tgt");
  check_input(memory, options_, who, "memory");
  KILN_CHECK(cache == nullptr || !masks.tgt_mask_.defined(),
             "{}: with a KV cache the target's self-attention is causal over the cached positions; pass no tgt_mask "
             "(got {})", who, masks.tgt_mask_.defined() ? masks.tgt_mask_.shape() : Shape{});
  auto self_opts = AttentionForwardOptions()
                       .attn_mask(masks.tgt_mask_)
                       .key_padding_mask(masks.tgt_key_padding_mask_)
                       .is_causal(masks.tgt_is_causal_ || cache != nullptr)
                       .need_weights(false);
  auto cross_opts = AttentionForwardOptions()
                        .attn_mask(masks.memory_mask_)
                        .key_padding_mask(masks.memory_key_padding_mask_)
                        .need_weights(record_);
  if (cache != nullptr) {
    self_opts.cache(&cache->self_attn);
    cache->cross_attn.frozen = true;
    cross_opts.cache(&cache->cross_attn);
  }
  auto sa = [&](const Variable& x) { return (*dropout1)(self_attn->forward(x, x, x, self_opts).output); };
  auto mha = [&](const Variable& x) {
    AttentionOutput a = multihead_attn->forward(x, memory, memory, cross_opts);
    if (record_) last_cross_ = a.weights.detach();
    return (*dropout2)(a.output);
  };
  auto ff = [&](const Variable& x) {
    return (*dropout3)(feed_forward(x, *linear1, *dropout, *linear2, options_.activation_));
  };
  Variable x = tgt;
  if (options_.norm_first_) {
    x = x + sa((*norm1)(x));
    x = x + mha((*norm2)(x));
    return x + ff((*norm3)(x));
  }
  x = (*norm1)(x + sa(x));
  x = (*norm2)(x + mha(x));
  return (*norm3)(x + ff(x));
}

std::string TransformerDecoderLayer::extra_repr() const { return layer_repr(options_); }

// ---- Stacks -------------------------------------------------------------------------------------

TransformerEncoder::TransformerEncoder(const TransformerEncoderLayer& layer, std::int64_t num_layers,
                                       std::shared_ptr<LayerNorm> final_norm)
    : Module("TransformerEncoder") {
  KILN_CHECK(num_layers >= 1, "TransformerEncoder: num_layers must be at least 1, got {}", num_layers);
  layers = register_module("layers", std::make_shared<ModuleList>());
  for (std::int64_t i = 0; i < num_layers; ++i) layers->push_back(layer.clone());
  if (final_norm) norm = register_module("norm", std::move(final_norm));
}

TransformerEncoderLayer& TransformerEncoder::layer(std::int64_t i) const {
  return layers->at<TransformerEncoderLayer>(static_cast<std::size_t>(i));
}

Variable TransformerEncoder::forward(const Variable& src, const TransformerMasks& masks) {
  Variable x = src;
  for (std::int64_t i = 0; i < num_layers(); ++i) {
    try {
      x = layer(i).forward(x, masks);
    } catch (const Error& e) {
      throw Error(fmt::format("TransformerEncoder layers.{}: {}", i, e.what()));
    }
  }
  return norm ? (*norm)(x) : x;
}

std::shared_ptr<Module> TransformerEncoder::clone() const {
  auto copy = std::make_shared<TransformerEncoder>(
      layer(0), num_layers(), norm ? std::static_pointer_cast<LayerNorm>(norm->clone()) : nullptr);
  copy->load_state_dict(state_dict());
  copy->train(is_training());
  return copy;
}

std::string TransformerEncoder::extra_repr() const { return fmt::format("num_layers={}", num_layers()); }

TransformerDecoder::TransformerDecoder(const TransformerDecoderLayer& layer, std::int64_t num_layers,
                                       std::shared_ptr<LayerNorm> final_norm)
    : Module("TransformerDecoder") {
  KILN_CHECK(num_layers >= 1, "TransformerDecoder: num_layers must be at least 1, got {}", num_layers);
  layers = register_module("layers", std::make_shared<ModuleList>());
  for (std::int64_t i = 0; i < num_layers; ++i) layers->push_back(layer.clone());
  if (final_norm) norm = register_module("norm", std::move(final_norm));
}

TransformerDecoderLayer& TransformerDecoder::layer(std::int64_t i) const {
  return layers->at<TransformerDecoderLayer>(static_cast<std::size_t>(i));
}

Variable TransformerDecoder::forward(const Variable& tgt, const Variable& memory, const TransformerMasks& masks,
                                     DecoderCache* cache) {
  if (cache != nullptr && cache->layers.empty()) cache->layers.resize(static_cast<std::size_t>(num_layers()));
  KILN_CHECK(cache == nullptr || static_cast<std::int64_t>(cache->layers.size()) == num_layers(),
             "TransformerDecoder: the cache has {} layers, the decoder {}", cache ? cache->layers.size() : 0,
             num_layers());
  Variable x = tgt;
  for (std::int64_t i = 0; i < num_layers(); ++i) {
    try {
      x = layer(i).forward(x, memory, masks, cache ? &cache->layers[static_cast<std::size_t>(i)] : nullptr);
    } catch (const Error& e) {
      throw Error(fmt::format("TransformerDecoder layers.{}: {}", i, e.what()));
    }
  }
  return norm ? (*norm)(x) : x;
}

std::shared_ptr<Module> TransformerDecoder::clone() const {
  auto copy = std::make_shared<TransformerDecoder>(
      layer(0), num_layers(), norm ? std::static_pointer_cast<LayerNorm>(norm->clone()) : nullptr);
  copy->load_state_dict(state_dict());
  copy->train(is_training());
  return copy;
}

std::string TransformerDecoder::extra_repr() const { return fmt::format("num_layers={}", num_layers()); }

// ---- Transformer --------------------------------------------------------------------------------

Transformer::Transformer(TransformerOptions options) : Module("Transformer"), options_(options) {
  KILN_CHECK(options_.num_encoder_layers_ >= 1 && options_.num_decoder_layers_ >= 1,
             "Transformer: num_encoder_layers and num_decoder_layers must be at least 1, got {} and {}",
             options_.num_encoder_layers_, options_.num_decoder_layers_);
  reset();
}

void Transformer::reset() {
  const auto& o = options_.layer_;
  encoder = register_module("encoder", std::make_shared<TransformerEncoder>(TransformerEncoderLayer(o),
                                                                            options_.num_encoder_layers_, make_norm(o)));
  decoder = register_module("decoder", std::make_shared<TransformerDecoder>(TransformerDecoderLayer(o),
                                                                            options_.num_decoder_layers_, make_norm(o)));
  // As PyTorch's nn.Transformer: every matrix Xavier-uniform (so the cloned layers differ).
  for (auto& [name, p] : named_parameters())
    if (p.dim() > 1) p.set_value(init::xavier_uniform(p.shape(), 1, p.dtype()));
}

Variable Transformer::forward(const Variable& src, const Variable& tgt, const TransformerMasks& masks) {
  const auto& o = options_.layer_;
  KILN_CHECK(src.defined() && tgt.defined() && src.dim() == tgt.dim() && src.size(-1) == o.d_model_ &&
                 tgt.size(-1) == o.d_model_ && (src.dim() == 2 || src.size(o.batch_first_ ? 0 : 1) == tgt.size(o.batch_first_ ? 0 : 1)),
             "Transformer(d_model={}): src and tgt must be {} with the same batch and d_model, got {} and {}", o.d_model_,
             o.batch_first_ ? "[B, L, E]" : "[L, B, E]", src.defined() ? src.shape() : Shape{},
             tgt.defined() ? tgt.shape() : Shape{});
  return decoder->forward(tgt, encoder->forward(src, masks), masks);
}

std::string Transformer::extra_repr() const {
  return fmt::format("num_encoder_layers={}, num_decoder_layers={}, {}", options_.num_encoder_layers_,
                     options_.num_decoder_layers_, layer_repr(options_.layer_));
}

}  // namespace kiln::nn

#include "seq2seq/transformer_seq2seq.hpp"

#include <algorithm>
#include <cmath>

#include "ops/ops.hpp"

namespace kiln::nn {

TransformerSeq2Seq::TransformerSeq2Seq(TransformerSeq2SeqOptions options)
    : Module("TransformerSeq2Seq"), options_(options) {
  const auto& o = options_;
  KILN_CHECK(o.src_vocab_ > 0 && o.tgt_vocab_ > 0 && o.max_len_ > 0,
             "TransformerSeq2Seq: vocabularies and max_len must be positive, got {}, {} and {}", o.src_vocab_,
             o.tgt_vocab_, o.max_len_);
  for (auto [name, id] : {std::pair{"pad_id", o.pad_id_}, {"bos_id", o.bos_id_}, {"eos_id", o.eos_id_}})
    KILN_CHECK(id >= 0 && id < o.tgt_vocab_, "TransformerSeq2Seq: {} {} is outside the target vocabulary of {}", name,
               id, o.tgt_vocab_);
  reset();
}

void TransformerSeq2Seq::reset() {
  const auto& o = options_;
  src_embed = register_module("src_embed", std::make_shared<Embedding>(EmbeddingOptions(o.src_vocab_, o.d_model_).padding_idx(o.pad_id_)));
  tgt_embed = register_module("tgt_embed", std::make_shared<Embedding>(EmbeddingOptions(o.tgt_vocab_, o.d_model_).padding_idx(o.pad_id_)));
  // As fairseq: embeddings ~ N(0, 1/d_model), so after the sqrt(d_model) scale they are ~N(0, 1), on a
  // par with the positional encodings instead of drowning them.
  for (Embedding* e : {src_embed.get(), tgt_embed.get()}) {
    Tensor w = normal(e->weight.shape(), 0, 1 / std::sqrt(static_cast<double>(o.d_model_)));
    std::fill_n(w.data<float>() + o.pad_id_ * o.d_model_, o.d_model_, 0.0f);
    e->weight.set_value(w);
  }
  const auto po = PositionalEncodingOptions(o.d_model_).max_len(o.max_len_).dropout(o.dropout_).batch_first(true);
  auto make_pos = [&]() -> std::shared_ptr<Module> {
    if (o.learned_positions_) return std::make_shared<LearnedPositionalEncoding>(po);
    return std::make_shared<SinusoidalPositionalEncoding>(po);
  };
  src_pos = register_module("src_pos", make_pos());
  tgt_pos = register_module("tgt_pos", make_pos());
  transformer = register_module("transformer", std::make_shared<Transformer>(
      TransformerOptions(o.d_model_, o.nhead_).num_encoder_layers(o.num_encoder_layers_).num_decoder_layers(o.num_decoder_layers_)
          .dim_feedforward(o.dim_feedforward_).dropout(o.dropout_).activation(o.activation_).norm_first(o.norm_first_).batch_first(true)));
  generator = register_module("generator", std::make_shared<Linear>(o.d_model_, o.tgt_vocab_));
}

Variable TransformerSeq2Seq::embed(Embedding& table, Module& pos, const Variable& ids, std::int64_t start) {
  const Variable e = mul(table.forward(ids), std::sqrt(static_cast<double>(options_.d_model_)));
  if (auto* s = dynamic_cast<SinusoidalPositionalEncoding*>(&pos)) return s->forward(e, start);
  return static_cast<LearnedPositionalEncoding&>(pos).forward(e, start);
}

Variable TransformerSeq2Seq::padding_mask(const Variable& src, const Variable& src_lengths) const {
  KILN_CHECK(src.defined() && src.dtype() == kInt64 && src.dim() == 2,
             "TransformerSeq2Seq: src must be int64 token ids [B, S], got {}", src.defined() ? src.shape() : Shape{});
  if (!src_lengths.defined()) return Variable();
  const std::int64_t batch = src.size(0), len = src.size(1);
  KILN_CHECK(src_lengths.dtype() == kInt64 && src_lengths.shape() == Shape{batch},
             "TransformerSeq2Seq: src_lengths must be int64 [{}], got {}", batch, src_lengths.shape());
  const std::int64_t* l = src_lengths.value().data<std::int64_t>();
  std::vector<bool> pad(static_cast<std::size_t>(batch * len));
  for (std::int64_t b = 0; b < batch; ++b) {
    KILN_CHECK(l[b] >= 1 && l[b] <= len, "TransformerSeq2Seq: src_lengths[{}] = {} is outside [1, {}]", b, l[b], len);
    for (std::int64_t s = l[b]; s < len; ++s) pad[static_cast<std::size_t>(b * len + s)] = true;
  }
  return Variable(from_data(pad, {batch, len}));
}

Seq2SeqOutput TransformerSeq2Seq::forward(const Variable& src, const Variable& src_lengths, const Variable& tgt_in) {
  KILN_CHECK(tgt_in.defined() && tgt_in.dtype() == kInt64 && tgt_in.dim() == 2 && tgt_in.size(0) == src.size(0),
             "TransformerSeq2Seq: tgt_in must be int64 token ids [B, T] with the source's batch {}, got {}",
             src.size(0), tgt_in.defined() ? tgt_in.shape() : Shape{});
  const Variable pad = padding_mask(src, src_lengths);
  const auto masks = TransformerMasks().src_key_padding_mask(pad).memory_key_padding_mask(pad).tgt_is_causal(true);
  const Variable memory = transformer->encoder->forward(embed(*src_embed, *src_pos, src, 0), masks);
  auto& last = transformer->decoder->layer(transformer->decoder->num_layers() - 1);
  last.record_attention(true);
  const Variable y = transformer->decoder->forward(embed(*tgt_embed, *tgt_pos, tgt_in, 0), memory, masks);
  last.record_attention(false);
  return {generator->forward(y), last.last_cross_attention()};
}

Variable TransformerSeq2Seq::loss(const Seq2SeqOutput& out, const Variable& tgt_out) const {
  KILN_CHECK(tgt_out.defined() && tgt_out.dtype() == kInt64 && out.logits.defined() && tgt_out.dim() == 2 &&
                 tgt_out.size(0) == out.logits.size(0) && tgt_out.size(1) == out.logits.size(1),
             "TransformerSeq2Seq::loss: tgt_out must be int64 [B, T] matching logits {}, got {}",
             out.logits.defined() ? out.logits.shape() : Shape{}, tgt_out.defined() ? tgt_out.shape() : Shape{});
  return cross_entropy(reshape(out.logits, {-1, options_.tgt_vocab_}), reshape(tgt_out, {-1}), options_.pad_id_);
}

// State: memory [N, S, E], padding [N, S] (or undefined), then per decoder layer its self-attention
// keys and values and the memory's keys and values, [N, heads, L, head_dim].
DecodeState TransformerSeq2Seq::start(const Variable& src, const Variable& src_lengths) {
  const Variable pad = padding_mask(src, src_lengths);
  DecodeState s;
  s.add(transformer->encoder->forward(embed(*src_embed, *src_pos, src, 0), TransformerMasks().src_key_padding_mask(pad)), 0);
  s.add(pad, 0);
  for (std::int64_t i = 0; i < 4 * transformer->decoder->num_layers(); ++i) s.add(Variable(), 0);
  return s;
}

Variable TransformerSeq2Seq::step(const Variable& tokens, DecodeState& state, Variable* attention) {
  const std::int64_t layers = transformer->decoder->num_layers();
  KILN_CHECK(state.tensors.size() == static_cast<std::size_t>(2 + 4 * layers),
             "TransformerSeq2Seq::step: the state was not made by TransformerSeq2Seq::start");
  const Variable memory = state.tensors[0];
  KILN_CHECK(tokens.defined() && tokens.dtype() == kInt64 && tokens.shape() == Shape{memory.size(0)},
             "TransformerSeq2Seq::step: tokens must be int64 [{}], got {}", memory.size(0),
             tokens.defined() ? tokens.shape() : Shape{});
  DecoderCache cache;
  cache.layers.resize(static_cast<std::size_t>(layers));
  for (std::int64_t i = 0; i < layers; ++i) {
    auto& c = cache.layers[static_cast<std::size_t>(i)];
    const auto* t = &state.tensors[static_cast<std::size_t>(2 + 4 * i)];
    c.self_attn.keys = t[0], c.self_attn.values = t[1], c.cross_attn.keys = t[2], c.cross_attn.values = t[3];
  }
  auto& last = transformer->decoder->layer(layers - 1);
  last.record_attention(attention != nullptr);
  const Variable x = embed(*tgt_embed, *tgt_pos, unsqueeze(tokens, 1), cache.length());
  const Variable y = transformer->decoder->forward(x, memory, TransformerMasks().memory_key_padding_mask(state.tensors[1]), &cache);
  last.record_attention(false);
  if (attention != nullptr) *attention = squeeze(last.last_cross_attention(), 1);
  for (std::int64_t i = 0; i < layers; ++i) {
    const auto& c = cache.layers[static_cast<std::size_t>(i)];
    auto* t = &state.tensors[static_cast<std::size_t>(2 + 4 * i)];
    t[0] = c.self_attn.keys, t[1] = c.self_attn.values, t[2] = c.cross_attn.keys, t[3] = c.cross_attn.values;
  }
  return log_softmax(squeeze(generator->forward(y), 1), 1);
}

std::string TransformerSeq2Seq::extra_repr() const {
  const auto& o = options_;
  return fmt::format("src_vocab={}, tgt_vocab={}, d_model={}, nhead={}, layers={}+{}, positions={}", o.src_vocab_,
                     o.tgt_vocab_, o.d_model_, o.nhead_, o.num_encoder_layers_, o.num_decoder_layers_,
                     o.learned_positions_ ? "learned" : "sinusoidal");
}

}  // namespace kiln::nn

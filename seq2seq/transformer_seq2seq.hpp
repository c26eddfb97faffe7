#pragma once
// A Transformer translation model: token embeddings scaled by sqrt(d_model), positional encodings,
// nn.Transformer, and a generator head to target-vocabulary logits. Decoding reuses each layer's keys
// and values (a KV cache), so a step costs one position, not the whole prefix.
//
//   kiln::nn::TransformerSeq2Seq model(kiln::nn::TransformerSeq2SeqOptions(src_vocab, tgt_vocab).d_model(128).nhead(4));
//   auto out = model.forward(src, src_lengths, tgt_in);        // logits [B, T, V], attention [B, T, S]
//   model.loss(out, tgt_out).backward();
//   auto best = kiln::nn::greedy_search(model, src, src_lengths, kiln::nn::SearchOptions(1, 2));

#include "layers/embedding.hpp"
#include "layers/positional.hpp"
#include "sequence/transformer.hpp"
#include "seq2seq/rnn_seq2seq.hpp"

namespace kiln::nn {

struct TransformerSeq2SeqOptions {
  TransformerSeq2SeqOptions(std::int64_t src_vocab, std::int64_t tgt_vocab) : src_vocab_(src_vocab), tgt_vocab_(tgt_vocab) {}
  TransformerSeq2SeqOptions& d_model(std::int64_t n) { d_model_ = n; return *this; }
  TransformerSeq2SeqOptions& nhead(std::int64_t n) { nhead_ = n; return *this; }
  TransformerSeq2SeqOptions& num_encoder_layers(std::int64_t n) { num_encoder_layers_ = n; return *this; }
  TransformerSeq2SeqOptions& num_decoder_layers(std::int64_t n) { num_decoder_layers_ = n; return *this; }
  TransformerSeq2SeqOptions& dim_feedforward(std::int64_t n) { dim_feedforward_ = n; return *this; }
  TransformerSeq2SeqOptions& dropout(double p) { dropout_ = p; return *this; }
  TransformerSeq2SeqOptions& activation(FeedForwardActivation a) { activation_ = a; return *this; }
  TransformerSeq2SeqOptions& norm_first(bool on) { norm_first_ = on; return *this; }
  /// A learned position table instead of sinusoids.
  TransformerSeq2SeqOptions& learned_positions(bool on) { learned_positions_ = on; return *this; }
  TransformerSeq2SeqOptions& max_len(std::int64_t n) { max_len_ = n; return *this; }
  TransformerSeq2SeqOptions& pad_id(std::int64_t id) { pad_id_ = id; return *this; }
  TransformerSeq2SeqOptions& bos_id(std::int64_t id) { bos_id_ = id; return *this; }
  TransformerSeq2SeqOptions& eos_id(std::int64_t id) { eos_id_ = id; return *this; }
  std::int64_t src_vocab_, tgt_vocab_;
  std::int64_t d_model_ = 128, nhead_ = 4, num_encoder_layers_ = 2, num_decoder_layers_ = 2, dim_feedforward_ = 512;
  double dropout_ = 0.1;
  FeedForwardActivation activation_ = FeedForwardActivation::ReLU;
  bool norm_first_ = false, learned_positions_ = false;
  std::int64_t max_len_ = 512;
  std::int64_t pad_id_ = 0, bos_id_ = 1, eos_id_ = 2;
};

/// Submodules: src_embed, tgt_embed, src_pos, tgt_pos, transformer, generator.
class TransformerSeq2Seq : public Module, public IncrementalDecoder {
 public:
  explicit TransformerSeq2Seq(TransformerSeq2SeqOptions options);
  void reset() override;
  /// src int64 [B, S] (padding past src_lengths is masked), tgt_in int64 [B, T] (BOS, y1, ..., y_T-1),
  /// decoded in parallel under a causal mask. attention: the last decoder layer's cross-attention,
  /// averaged over heads.
  using Module::forward;
  Seq2SeqOutput forward(const Variable& src, const Variable& src_lengths, const Variable& tgt_in);
  Variable loss(const Seq2SeqOutput& out, const Variable& tgt_out) const;

  DecodeState start(const Variable& src, const Variable& src_lengths) override;
  Variable step(const Variable& tokens, DecodeState& state, Variable* attention) override;

  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::string extra_repr() const override;
  const TransformerSeq2SeqOptions& options() const { return options_; }

  std::shared_ptr<Embedding> src_embed, tgt_embed;
  std::shared_ptr<Module> src_pos, tgt_pos;
  std::shared_ptr<Transformer> transformer;
  std::shared_ptr<Linear> generator;

 private:
  Variable embed(Embedding& table, Module& pos, const Variable& ids, std::int64_t start);
  Variable padding_mask(const Variable& src, const Variable& src_lengths) const;
  TransformerSeq2SeqOptions options_;
};

}  // namespace kiln::nn

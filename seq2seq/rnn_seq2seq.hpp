#pragma once
// The recurrent encoder-decoder (Sutskever et al., 2014; Cho et al., 2014): an encoder reads the source
// and its final state initialises the decoder, which predicts the target one token at a time; with
// attention (Bahdanau et al., 2015; Luong et al., 2015) every decoding step also looks back at all
// encoder outputs.
//
//   auto opts = kiln::nn::Seq2SeqOptions(src_vocab, tgt_vocab).hidden_size(128).cell(kiln::nn::CellType::GRU)
//                   .bidirectional_encoder(true).attention(kiln::nn::Seq2SeqAttention::Bahdanau);
//   kiln::nn::Seq2Seq model(opts);
//   auto out = model.forward(src, src_lengths, tgt_in, /*teacher_forcing=*/0.9);   // logits [B, T, V]
//   model.loss(out, tgt_out).backward();
//   auto best = kiln::nn::beam_search(model, src, src_lengths, kiln::nn::SearchOptions(opts.bos_id_, opts.eos_id_));
//
// Note [Seq2seq step]: one decoding step, with h the decoder's top-layer state and K the encoder outputs:
//   none:      h_t = rnn(emb(y_t-1), h_t-1);                           o_t = h_t
//   Bahdanau:  c_t = attn(h_t-1, K); h_t = rnn([emb(y_t-1); c_t], h_t-1);  o_t = tanh(W_c [h_t; c_t])
//   Luong:     h_t = rnn([emb(y_t-1); o_t-1], h_t-1) (input feeding; emb alone without it);
//              c_t = attn(h_t, K);                                      o_t = tanh(W_c [h_t; c_t])
// and p(y_t) = softmax(generator(o_t)). A bidirectional encoder's final states [forward; backward] pass
// through tanh(bridge) to the decoder's size.

#include "layers/embedding.hpp"
#include "sequence/recurrent.hpp"
#include "seq2seq/recurrent_attention.hpp"
#include <string>

#include "seq2seq/search.hpp"

namespace kiln::nn {

enum class CellType { RNN, LSTM, GRU };
enum class Seq2SeqAttention { None, Bahdanau, Luong };

struct Seq2SeqOptions {
  Seq2SeqOptions(std::int64_t src_vocab, std::int64_t tgt_vocab) : src_vocab_(src_vocab), tgt_vocab_(tgt_vocab) {}
  Seq2SeqOptions& embedding_dim(std::int64_t n) { embedding_dim_ = n; return *this; }
  Seq2SeqOptions& hidden_size(std::int64_t n) { hidden_size_ = n; return *this; }
  Seq2SeqOptions& num_layers(std::int64_t n) { num_layers_ = n; return *this; }
  /// The recurrent cell of encoder and decoder: any registered cell (nn::CellRegistry), e.g. "lstm",
  /// "peephole_lstm" or a plugin's; an LSTM-like cell (two state tensors) carries c across too.
  Seq2SeqOptions& cell(std::string name) { cell_ = std::move(name); return *this; }
  Seq2SeqOptions& cell(CellType c) { return cell(c == CellType::RNN ? "rnn_tanh" : c == CellType::LSTM ? "lstm" : "gru"); }
  Seq2SeqOptions& bidirectional_encoder(bool on) { bidirectional_encoder_ = on; return *this; }
  /// Dropout on embeddings, between recurrent layers and before the generator, while training.
  Seq2SeqOptions& dropout(double p) { dropout_ = p; return *this; }
  Seq2SeqOptions& attention(Seq2SeqAttention a) { attention_ = a; return *this; }
  /// Luong's score (dot, general, concat); Bahdanau always uses the additive score.
  Seq2SeqOptions& score(AttentionScore s) { score_ = s; return *this; }
  /// Luong only: feed the previous attentional state o_t-1 into the decoder with the token.
  Seq2SeqOptions& input_feeding(bool on) { input_feeding_ = on; return *this; }
  /// Read each source backwards (within its length): Sutskever et al.'s trick.
  Seq2SeqOptions& reverse_source(bool on) { reverse_source_ = on; return *this; }
  Seq2SeqOptions& pad_id(std::int64_t id) { pad_id_ = id; return *this; }
  Seq2SeqOptions& bos_id(std::int64_t id) { bos_id_ = id; return *this; }
  Seq2SeqOptions& eos_id(std::int64_t id) { eos_id_ = id; return *this; }
  std::int64_t src_vocab_, tgt_vocab_;
  std::int64_t embedding_dim_ = 64, hidden_size_ = 128, num_layers_ = 1;
  std::string cell_ = "lstm";
  bool bidirectional_encoder_ = false;
  double dropout_ = 0;
  Seq2SeqAttention attention_ = Seq2SeqAttention::None;
  AttentionScore score_ = AttentionScore::General;
  bool input_feeding_ = true, reverse_source_ = false;
  std::int64_t pad_id_ = 0, bos_id_ = 1, eos_id_ = 2;
};

struct Seq2SeqOutput {
  Variable logits;     ///< [B, T, tgt_vocab]
  Variable attention;  ///< [B, T, S] weights over the source (in its original order), or undefined
};

/// Submodules: src_embed, tgt_embed, encoder, [bridge_h, bridge_c], decoder, [attention, combine], generator.
class Seq2Seq : public Module, public IncrementalDecoder {
 public:
  explicit Seq2Seq(Seq2SeqOptions options);
  void reset() override;
  /// src int64 [B, S] padded with pad_id; src_lengths int64 [B] (undefined: every source is S long);
  /// tgt_in int64 [B, T] (BOS, y1, ..., y_T-1). At each step t > 0 the decoder reads tgt_in[:, t] with
  /// probability teacher_forcing, else its own most likely token from step t-1 (drawn per step from gen,
  /// or the default generator).
  using Module::forward;
  Seq2SeqOutput forward(const Variable& src, const Variable& src_lengths, const Variable& tgt_in,
                        double teacher_forcing = 1.0, Generator* gen = nullptr);
  /// Mean cross-entropy over the target tokens that are not pad_id; tgt_out int64 [B, T] (y1, ..., EOS).
  Variable loss(const Seq2SeqOutput& out, const Variable& tgt_out) const;

  DecodeState start(const Variable& src, const Variable& src_lengths) override;
  Variable step(const Variable& tokens, DecodeState& state, Variable* attention) override;

  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::string extra_repr() const override;
  const Seq2SeqOptions& options() const { return options_; }

  std::shared_ptr<Embedding> src_embed, tgt_embed;
  std::shared_ptr<Recurrent> encoder, decoder;
  std::shared_ptr<Linear> bridge_h, bridge_c, combine, generator;
  std::shared_ptr<RecurrentAttention> attention;

 private:
  struct Run;
  Run encode(const Variable& src, const Variable& src_lengths);
  // One step of Note [Seq2seq step] from token embeddings [N, E]: logits [N, V]; weights into *weights.
  Variable decode_step(const Variable& emb, Run& run, Variable* weights);
  Seq2SeqOptions options_;
};


}  // namespace kiln::nn

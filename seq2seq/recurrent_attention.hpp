#pragma once
// Attention for recurrent decoders: a decoder state (the query) scores every encoder output (the keys),
// and the softmax-weighted sum of the encoder outputs is the context vector.
//
//   Bahdanau et al. (2015), additive:  score(q, k) = v^T tanh(W_q q + W_k k)
//   Luong et al. (2015), dot:          score(q, k) = q^T k
//                        general:      score(q, k) = q^T W k
//                        concat:       score(q, k) = v^T tanh(W [q; k])
//
//   kiln::nn::RecurrentAttention attn(kiln::nn::RecurrentAttentionOptions(256, 512).score(kiln::nn::AttentionScore::Additive));
//   auto [context, weights] = attn.forward(h, encoder_outputs, source_padding);  // [B, 512], [B, S]

#include "sequence/attention.hpp"

namespace kiln::nn {

enum class AttentionScore { Additive, Dot, General, Concat };

/// "additive", "dot", "general", "concat" (and back), for options and error messages.
const char* attention_score_name(AttentionScore s);
AttentionScore parse_attention_score(const std::string& name);

struct RecurrentAttentionOptions {
  RecurrentAttentionOptions(std::int64_t query_size, std::int64_t key_size) : query_size_(query_size), key_size_(key_size) {}
  RecurrentAttentionOptions& score(AttentionScore s) { score_ = s; return *this; }
  /// The hidden size of the additive and concat scores (default: query_size).
  RecurrentAttentionOptions& attention_size(std::int64_t n) { attention_size_ = n; return *this; }
  std::int64_t query_size_, key_size_;
  AttentionScore score_ = AttentionScore::Additive;
  std::int64_t attention_size_ = 0;
};

/// Parameters: additive: query_proj.weight, key_proj.weight, key_proj.bias, v.weight; general:
/// key_proj.weight; concat: proj.weight, proj.bias, v.weight; dot: none (query_size == key_size).
class RecurrentAttention : public Module {
 public:
  explicit RecurrentAttention(RecurrentAttentionOptions options);
  void reset() override;
  /// The part of the score that depends only on the keys, computed once per source sequence (the
  /// additive score's W_k k, the general score's W k): pass it to forward as `prepared`.
  Variable prepare(const Variable& keys) const;
  /// query [B, Q], keys [B, S, K], padding bool [B, S] (true = padding, not attended) ->
  /// output = context [B, K], weights [B, S].
  AttentionOutput forward(const Variable& query, const Variable& keys, const Variable& padding = Variable(),
                          const Variable& prepared = Variable()) const;
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::string extra_repr() const override;
  const RecurrentAttentionOptions& options() const { return options_; }

 private:
  RecurrentAttentionOptions options_;
  std::shared_ptr<Linear> query_proj_, key_proj_, proj_, v_;
};

}  // namespace kiln::nn

#include "seq2seq/recurrent_attention.hpp"

#include <limits>

#include "ops/ops.hpp"

namespace kiln::nn {

const char* attention_score_name(AttentionScore s) {
  switch (s) {
    case AttentionScore::Additive: return "additive";
    case AttentionScore::Dot: return "dot";
    case AttentionScore::General: return "general";
    case AttentionScore::Concat: return "concat";
  }
  return "?";
}

AttentionScore parse_attention_score(const std::string& name) {
  for (AttentionScore s : {AttentionScore::Additive, AttentionScore::Dot, AttentionScore::General, AttentionScore::Concat})
    if (name == attention_score_name(s)) return s;
  if (name == "bahdanau") return AttentionScore::Additive;
  throw Error(fmt::format("attention score '{}' is not one of additive (bahdanau), dot, general, concat", name));
}

RecurrentAttention::RecurrentAttention(RecurrentAttentionOptions options)
    : Module("RecurrentAttention"), options_(options) {
  auto& o = options_;
  KILN_CHECK(o.query_size_ > 0 && o.key_size_ > 0 && o.attention_size_ >= 0,
             "RecurrentAttention: query_size, key_size and attention_size must be positive, got {}, {} and {}",
             o.query_size_, o.key_size_, o.attention_size_);
  KILN_CHECK(o.score_ != AttentionScore::Dot || o.query_size_ == o.key_size_,
             "RecurrentAttention: the dot score needs query_size == key_size, got {} and {} (use general)",
             o.query_size_, o.key_size_);
  if (o.attention_size_ == 0) o.attention_size_ = o.query_size_;
  reset();
}

void RecurrentAttention::reset() {
  const auto& o = options_;
  switch (o.score_) {
    case AttentionScore::Additive:
      query_proj_ = register_module("query_proj", std::make_shared<Linear>(LinearOptions(o.query_size_, o.attention_size_).bias(false)));
      key_proj_ = register_module("key_proj", std::make_shared<Linear>(o.key_size_, o.attention_size_));
      v_ = register_module("v", std::make_shared<Linear>(LinearOptions(o.attention_size_, 1).bias(false)));
      break;
    case AttentionScore::General:
      key_proj_ = register_module("key_proj", std::make_shared<Linear>(LinearOptions(o.key_size_, o.query_size_).bias(false)));
      break;
    case AttentionScore::Concat:
      proj_ = register_module("proj", std::make_shared<Linear>(o.query_size_ + o.key_size_, o.attention_size_));
      v_ = register_module("v", std::make_shared<Linear>(LinearOptions(o.attention_size_, 1).bias(false)));
      break;
    case AttentionScore::Dot: break;
  }
}

Variable RecurrentAttention::prepare(const Variable& keys) const {
  return key_proj_ ? key_proj_->forward(keys) : keys;
}

AttentionOutput RecurrentAttention::forward(const Variable& query, const Variable& keys, const Variable& padding,
                                            const Variable& prepared) const {
  const auto& o = options_;
  KILN_CHECK(query.defined() && keys.defined() && query.dim() == 2 && keys.dim() == 3 && query.size(1) == o.query_size_ &&
                 keys.size(2) == o.key_size_ && keys.size(0) == query.size(0),
             "RecurrentAttention({}, query_size={}, key_size={}): query must be [B, {}] and keys [B, S, {}], got {} and {}",
             attention_score_name(o.score_), o.query_size_, o.key_size_, o.query_size_, o.key_size_,
             query.defined() ? query.shape() : Shape{}, keys.defined() ? keys.shape() : Shape{});
  const std::int64_t b = keys.size(0), s = keys.size(1);
  KILN_CHECK(!padding.defined() || (padding.dtype() == kBool && padding.shape() == Shape{b, s}),
             "RecurrentAttention: padding must be a bool [{}, {}] mask, got {} {}", b, s,
             padding.defined() ? dtype_name(padding.dtype()) : "", padding.defined() ? padding.shape() : Shape{});
  const Variable pk = prepared.defined() ? prepared : prepare(keys);
  Variable scores;  // [B, S]
  switch (o.score_) {
    case AttentionScore::Additive:
      scores = squeeze(v_->forward(tanh(pk + unsqueeze(query_proj_->forward(query), 1))), 2);
      break;
    case AttentionScore::Dot:
    case AttentionScore::General:
      scores = squeeze(matmul(pk, unsqueeze(query, 2)), 2);
      break;
    case AttentionScore::Concat: {
      const Variable q = matmul(Variable(ones({b, s, 1}, query.dtype())), unsqueeze(query, 1));  // [B, S, Q]
      scores = squeeze(v_->forward(tanh(proj_->forward(concat({q, keys}, 2)))), 2);
      break;
    }
  }
  // Note [Attention masks]: the lowest finite value, so a row of padding attends uniformly, not NaN.
  if (padding.defined()) scores = masked_fill(scores, padding, std::numeric_limits<float>::lowest());
  const Variable weights = softmax(scores, 1);
  const Variable context = squeeze(matmul(unsqueeze(weights, 1), keys), 1);  // [B, K]
  return {context, weights};
}

std::string RecurrentAttention::extra_repr() const {
  return fmt::format("{}, query_size={}, key_size={}", attention_score_name(options_.score_), options_.query_size_,
                     options_.key_size_);
}

}  // namespace kiln::nn

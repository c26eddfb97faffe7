#include "seq2seq/rnn_seq2seq.hpp"

#include "ops/ops.hpp"

namespace kiln::nn {

// What the decoder carries between steps (Note [Seq2seq step]); rows index the sequences.
struct Seq2Seq::Run {
  Variable h, c;          // [L, N, H]: the decoder's state (c for LSTM)
  Variable feed;          // [N, H]: o_t-1 for Luong's input feeding
  Variable keys;          // [N, S, K]: encoder outputs
  Variable prepared;      // [N, S, *]: the keys' part of the score, computed once
  Variable padding;       // [N, S] bool
  Variable order;         // [N, S] int64: source position of each encoder step (reverse_source)

  DecodeState to_state() const {
    DecodeState s;
    s.add(h, 1), s.add(c, 1), s.add(feed, 0), s.add(keys, 0), s.add(prepared, 0), s.add(padding, 0), s.add(order, 0);
    return s;
  }
  static Run from_state(const DecodeState& s) {
    const auto& t = s.tensors;
    KILN_CHECK(t.size() == 7, "Seq2Seq::step: the state was not made by Seq2Seq::start");
    return Run{t[0], t[1], t[2], t[3], t[4], t[5], t[6]};
  }
};

namespace {


// [L * 2, B, H] (index l * 2 + direction) -> [L, B, 2H] = [forward; backward] per layer.
Variable join_directions(const Variable& s) {
  const Variable r = reshape(s, {-1, 2, s.size(1), s.size(2)});
  return concat({squeeze(narrow(r, 1, 0, 1), 1), squeeze(narrow(r, 1, 1, 1), 1)}, 2);
}

// The most likely token per row of logits [N, V] (no gradient).
Variable argmax_rows(const Variable& logits) {
  const std::vector<double> v = logits.value().to_vector();
  const std::int64_t n = logits.size(0), vocab = logits.size(1);
  std::vector<std::int64_t> out(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    out[static_cast<std::size_t>(i)] = std::max_element(v.begin() + i * vocab, v.begin() + (i + 1) * vocab) - (v.begin() + i * vocab);
  return Variable(from_data(out));
}

}  // namespace

Seq2Seq::Seq2Seq(Seq2SeqOptions options) : Module("Seq2Seq"), options_(options) {
  const auto& o = options_;
  KILN_CHECK(o.src_vocab_ > 0 && o.tgt_vocab_ > 0 && o.embedding_dim_ > 0 && o.hidden_size_ > 0 && o.num_layers_ > 0,
             "Seq2Seq: vocabularies, embedding_dim, hidden_size and num_layers must be positive, got {}, {}, {}, {}, {}",
             o.src_vocab_, o.tgt_vocab_, o.embedding_dim_, o.hidden_size_, o.num_layers_);
  for (auto [name, id] : {std::pair{"pad_id", o.pad_id_}, {"bos_id", o.bos_id_}, {"eos_id", o.eos_id_}})
    KILN_CHECK(id >= 0 && id < o.tgt_vocab_, "Seq2Seq: {} {} is outside the target vocabulary of {}", name, id,
               o.tgt_vocab_);
  KILN_CHECK(o.pad_id_ < o.src_vocab_, "Seq2Seq: pad_id {} is outside the source vocabulary of {}", o.pad_id_, o.src_vocab_);
  KILN_CHECK(o.dropout_ >= 0 && o.dropout_ < 1, "Seq2Seq: dropout must be in [0, 1), got {}", o.dropout_);
  reset();
}

void Seq2Seq::reset() {
  const auto& o = options_;
  const std::int64_t e = o.embedding_dim_, h = o.hidden_size_, dirs = o.bidirectional_encoder_ ? 2 : 1;
  src_embed = register_module("src_embed", std::make_shared<Embedding>(EmbeddingOptions(o.src_vocab_, e).padding_idx(o.pad_id_)));
  tgt_embed = register_module("tgt_embed", std::make_shared<Embedding>(EmbeddingOptions(o.tgt_vocab_, e).padding_idx(o.pad_id_)));
  encoder = register_module("encoder", make_recurrent(o.cell_, RecurrentOptions(e, h).num_layers(o.num_layers_).dropout(o.dropout_)
                                                            .bidirectional(o.bidirectional_encoder_).batch_first(true)));
  if (o.bidirectional_encoder_) {
    bridge_h = register_module("bridge_h", std::make_shared<Linear>(2 * h, h));
    if (encoder->cell(0)->state_size() == 2) bridge_c = register_module("bridge_c", std::make_shared<Linear>(2 * h, h));
  }
  const std::int64_t k = dirs * h;
  std::int64_t input = e;
  if (o.attention_ == Seq2SeqAttention::Bahdanau) input += k;
  if (o.attention_ == Seq2SeqAttention::Luong && o.input_feeding_) input += h;
  decoder = register_module("decoder", make_recurrent(o.cell_, RecurrentOptions(input, h).num_layers(o.num_layers_)
                                                            .dropout(o.dropout_).batch_first(true)));
  if (o.attention_ != Seq2SeqAttention::None) {
    const AttentionScore score = o.attention_ == Seq2SeqAttention::Bahdanau ? AttentionScore::Additive : o.score_;
    KILN_CHECK(score != AttentionScore::Dot || k == h,
               "Seq2Seq: Luong's dot score needs the encoder outputs ({}) as wide as the decoder state ({}); a "
               "bidirectional encoder doubles them: use general or concat", k, h);
    attention = register_module("attention", std::make_shared<RecurrentAttention>(RecurrentAttentionOptions(h, k).score(score)));
    combine = register_module("combine", std::make_shared<Linear>(LinearOptions(h + k, h).bias(false)));
  }
  generator = register_module("generator", std::make_shared<Linear>(h, o.tgt_vocab_));
}

Seq2Seq::Run Seq2Seq::encode(const Variable& src, const Variable& src_lengths) {
  const auto& o = options_;
  KILN_CHECK(src.defined() && src.dtype() == kInt64 && src.dim() == 2,
             "Seq2Seq: src must be int64 token ids [B, S], got {} {}", src.defined() ? dtype_name(src.dtype()) : "",
             src.defined() ? src.shape() : Shape{});
  const std::int64_t batch = src.size(0), len = src.size(1);
  std::vector<std::int64_t> lengths(static_cast<std::size_t>(batch), len);
  if (src_lengths.defined()) {
    KILN_CHECK(src_lengths.dtype() == kInt64 && src_lengths.shape() == Shape{batch},
               "Seq2Seq: src_lengths must be int64 [{}], got {} {}", batch, dtype_name(src_lengths.dtype()),
               src_lengths.shape());
    const std::int64_t* l = src_lengths.value().data<std::int64_t>();
    for (std::int64_t b = 0; b < batch; ++b) {
      KILN_CHECK(l[b] >= 1 && l[b] <= len, "Seq2Seq: src_lengths[{}] = {} is outside [1, {}]", b, l[b], len);
      lengths[static_cast<std::size_t>(b)] = l[b];
    }
  }
  // The order the encoder reads: position s of row b is source token order[b][s].
  std::vector<std::int64_t> order(static_cast<std::size_t>(batch * len));
  std::vector<bool> padding(static_cast<std::size_t>(batch * len));
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t s = 0; s < len; ++s) {
      const std::int64_t n = lengths[static_cast<std::size_t>(b)];
      order[static_cast<std::size_t>(b * len + s)] = o.reverse_source_ && s < n ? n - 1 - s : s;
      padding[static_cast<std::size_t>(b * len + s)] = s >= n;
    }
  Run run;
  run.order = Variable(from_data(order, {batch, len}));
  run.padding = Variable(from_data(padding, {batch, len}));
  const Variable ids = o.reverse_source_ ? gather(src, 1, run.order) : src;
  const Variable emb = dropout(src_embed->forward(ids), o.dropout_, is_training());
  const RecurrentOutput enc = encoder->forward(emb, {}, Variable(from_data(lengths)));
  run.h = o.bidirectional_encoder_ ? tanh(bridge_h->forward(join_directions(enc.h_n))) : enc.h_n;
  if (enc.c_n.defined()) run.c = o.bidirectional_encoder_ ? tanh(bridge_c->forward(join_directions(enc.c_n))) : enc.c_n;
  if (attention) {
    run.keys = enc.output;
    run.prepared = attention->prepare(run.keys);
  }
  if (o.attention_ == Seq2SeqAttention::Luong && o.input_feeding_)
    run.feed = Variable(zeros({batch, o.hidden_size_}, run.h.dtype()));
  return run;
}

Variable Seq2Seq::decode_step(const Variable& emb, Run& run, Variable* weights) {
  const auto& o = options_;
  Variable input = emb, context, w;
  if (o.attention_ == Seq2SeqAttention::Bahdanau) {
    const AttentionOutput a = attention->forward(squeeze(narrow(run.h, 0, o.num_layers_ - 1, 1), 0), run.keys,
                                                 run.padding, run.prepared);
    context = a.output, w = a.weights;
    input = concat({emb, context}, 1);
  } else if (run.feed.defined()) {
    input = concat({emb, run.feed}, 1);
  }
  std::vector<Variable> state{run.h};
  if (run.c.defined()) state.push_back(run.c);
  const RecurrentOutput r = decoder->forward(unsqueeze(input, 1), state);
  run.h = r.h_n, run.c = r.c_n;
  const Variable h = squeeze(r.output, 1);
  Variable out = h;
  if (o.attention_ == Seq2SeqAttention::Luong) {
    const AttentionOutput a = attention->forward(h, run.keys, run.padding, run.prepared);
    context = a.output, w = a.weights;
  }
  if (attention) {
    out = tanh(combine->forward(concat({h, context}, 1)));
    if (run.feed.defined()) run.feed = out;
    // Weights over encoder steps -> over source positions (reversal within a length is its own inverse).
    if (weights != nullptr) *weights = o.reverse_source_ ? gather(w, 1, run.order) : w;
  }
  return generator->forward(dropout(out, o.dropout_, is_training()));
}

Seq2SeqOutput Seq2Seq::forward(const Variable& src, const Variable& src_lengths, const Variable& tgt_in,
                               double teacher_forcing, Generator* gen) {
  const auto& o = options_;
  KILN_CHECK(tgt_in.defined() && tgt_in.dtype() == kInt64 && tgt_in.dim() == 2 && tgt_in.size(0) == src.size(0),
             "Seq2Seq: tgt_in must be int64 token ids [B, T] with the source's batch {}, got {} {}", src.size(0),
             tgt_in.defined() ? dtype_name(tgt_in.dtype()) : "", tgt_in.defined() ? tgt_in.shape() : Shape{});
  KILN_CHECK(teacher_forcing >= 0 && teacher_forcing <= 1, "Seq2Seq: teacher_forcing must be in [0, 1], got {}",
             teacher_forcing);
  Run run = encode(src, src_lengths);
  const std::int64_t steps = tgt_in.size(1);
  const Variable emb_all = dropout(tgt_embed->forward(tgt_in), o.dropout_, is_training());
  if (!attention && teacher_forcing == 1.0) {
    // Every input is known: the decoder runs over the whole target at once (fused when it can).
    std::vector<Variable> state{run.h};
    if (run.c.defined()) state.push_back(run.c);
    const RecurrentOutput r = decoder->forward(emb_all, state);
    return {generator->forward(dropout(r.output, o.dropout_, is_training())), Variable()};
  }
  Generator& g = gen != nullptr ? *gen : default_generator();
  std::vector<Variable> logits, weights;
  Variable prev_logits;
  for (std::int64_t t = 0; t < steps; ++t) {
    const bool truth = t == 0 || teacher_forcing == 1.0 || (teacher_forcing > 0 && g.next_double() < teacher_forcing);
    const Variable emb = truth ? squeeze(narrow(emb_all, 1, t, 1), 1)
                               : dropout(tgt_embed->forward(argmax_rows(prev_logits)), o.dropout_, is_training());
    Variable w;
    prev_logits = decode_step(emb, run, &w);
    logits.push_back(prev_logits);
    if (w.defined()) weights.push_back(w);
  }
  return {stack(logits, 1), weights.empty() ? Variable() : stack(weights, 1)};
}

Variable Seq2Seq::loss(const Seq2SeqOutput& out, const Variable& tgt_out) const {
  KILN_CHECK(tgt_out.defined() && tgt_out.dtype() == kInt64 && tgt_out.dim() == 2 && out.logits.defined() &&
                 tgt_out.size(0) == out.logits.size(0) && tgt_out.size(1) == out.logits.size(1),
             "Seq2Seq::loss: tgt_out must be int64 [B, T] matching logits {}, got {}",
             out.logits.defined() ? out.logits.shape() : Shape{}, tgt_out.defined() ? tgt_out.shape() : Shape{});
  return cross_entropy(reshape(out.logits, {-1, options_.tgt_vocab_}), reshape(tgt_out, {-1}), options_.pad_id_);
}

DecodeState Seq2Seq::start(const Variable& src, const Variable& src_lengths) { return encode(src, src_lengths).to_state(); }

Variable Seq2Seq::step(const Variable& tokens, DecodeState& state, Variable* weights) {
  Run run = Run::from_state(state);
  KILN_CHECK(tokens.defined() && tokens.dtype() == kInt64 && tokens.shape() == Shape{run.h.size(1)},
             "Seq2Seq::step: tokens must be int64 [{}], got {}", run.h.size(1), tokens.defined() ? tokens.shape() : Shape{});
  const Variable logits = decode_step(tgt_embed->forward(tokens), run, weights);
  state = run.to_state();
  return log_softmax(logits, 1);
}

std::string Seq2Seq::extra_repr() const {
  const auto& o = options_;
  const char* att = o.attention_ == Seq2SeqAttention::None ? "none" : o.attention_ == Seq2SeqAttention::Bahdanau ? "bahdanau" : "luong";
  return fmt::format("{}, src_vocab={}, tgt_vocab={}, hidden_size={}, num_layers={}, attention={}{}{}", o.cell_,
                     o.src_vocab_, o.tgt_vocab_, o.hidden_size_, o.num_layers_, att,
                     o.bidirectional_encoder_ ? ", bidirectional_encoder=true" : "",
                     o.reverse_source_ ? ", reverse_source=true" : "");
}

}  // namespace kiln::nn

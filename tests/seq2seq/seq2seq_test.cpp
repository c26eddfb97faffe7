// Recurrent attention and the encoder-decoder models: finite differences through every parameter, the
// step-by-step decoder equal to the training forward, teacher forcing, source reversal and masks, and
// models that learn a copy task.

#include <gtest/gtest.h>

#include "layers/gradcheck_module.hpp"
#include "ops/ops.hpp"
#include "optim/optimizer.hpp"
#include "seq2seq/transformer_seq2seq.hpp"

namespace kiln::nn {
namespace {

using In = std::vector<Variable>;

Variable ids(std::vector<std::int64_t> v, const Shape& s) { return Variable(from_data(v, s)); }

class Scores : public ::testing::TestWithParam<AttentionScore> {};

TEST_P(Scores, RecurrentAttentionGradcheck) {
  RecurrentAttention attn(RecurrentAttentionOptions(4, 4).score(GetParam()).attention_size(3));
  Generator g(41);
  const Variable pad(from_data(std::vector<bool>{false, false, false, true, true, false, false, false, false, false}, {2, 5}));
  const auto r = gradcheck_module(attn, {Variable(normal({2, 4}, 0, 1, kFloat64, &g), true),
                                         Variable(normal({2, 5, 4}, 0, 1, kFloat64, &g), true)},
                                  [&](const In& v) {
                                    const auto a = attn.forward(v[0], v[1], pad);
                                    return concat({reshape(a.output, {-1}), reshape(a.weights, {-1})}, 0);
                                  });
  EXPECT_TRUE(r.ok) << attention_score_name(GetParam()) << ": " << r.message;
  const auto a = attn.forward(Variable(zeros({2, 4}, kFloat64)), Variable(normal({2, 5, 4}, 0, 1, kFloat64, &g)), pad);
  EXPECT_EQ(a.weights.value().to_vector()[3], 0.0);  // padding gets no weight
}

INSTANTIATE_TEST_SUITE_P(All, Scores,
                         ::testing::Values(AttentionScore::Additive, AttentionScore::Dot, AttentionScore::General,
                                           AttentionScore::Concat),
                         [](const auto& info) { return std::string(attention_score_name(info.param)); });

struct ModelCase {
  std::string name;
  Seq2SeqOptions options;
};
void PrintTo(const ModelCase& c, std::ostream* os) { *os << c.name; }

Seq2SeqOptions tiny() { return Seq2SeqOptions(7, 6).embedding_dim(3).hidden_size(4); }

class Models : public ::testing::TestWithParam<ModelCase> {};

const Variable kSrc = ids({3, 4, 5, 6, 2, 5, 3, 0}, {2, 4});
const Variable kLengths = ids({4, 2}, {2});
const Variable kTgtIn = ids({1, 3, 4, 1, 5, 0}, {2, 3});
const Variable kTgtOut = ids({3, 4, 2, 5, 2, 0}, {2, 3});
// Without the pad token: the pad row of an embedding gets no gradient by design, so finite differences
// through it would disagree.
const Variable kTgtInFull = ids({1, 3, 4, 1, 5, 3}, {2, 3});

TEST_P(Models, Gradcheck) {
  Seq2Seq model(GetParam().options);
  const auto r = gradcheck_module(model, {}, [&](const In&) {
    return model.forward(kSrc, kLengths, kTgtInFull).logits;
  });
  EXPECT_TRUE(r.ok) << r.message;
}

// Decoding with start/step from the true tokens gives the training forward's log-probabilities.
TEST_P(Models, StepsEqualForward) {
  Seq2Seq model(GetParam().options);
  model.to(kFloat64);
  const Seq2SeqOutput out = model.forward(kSrc, kLengths, kTgtIn);
  DecodeState state = model.start(kSrc, kLengths);
  for (std::int64_t t = 0; t < 3; ++t) {
    Variable w;
    const Variable lp = model.step(squeeze(narrow(kTgtIn, 1, t, 1), 1), state, &w);
    const Variable want = log_softmax(squeeze(narrow(out.logits, 1, t, 1), 1), 1);
    EXPECT_LT(max_abs_diff(lp.value(), want.value()), 1e-12) << "step " << t;
    if (out.attention.defined()) EXPECT_LT(max_abs_diff(w.value(), squeeze(narrow(out.attention, 1, t, 1), 1).value()), 1e-14);
  }
  if (out.attention.defined()) {
    EXPECT_EQ(out.attention.shape(), (Shape{2, 3, 4}));
    const auto w = out.attention.value().to_vector();
    for (int t = 0; t < 3; ++t) EXPECT_EQ(w[12 + t * 4 + 2] + w[12 + t * 4 + 3], 0.0) << "padding of source 1 attended";
  }
  EXPECT_NEAR(model.loss(out, kTgtOut).item(),
              cross_entropy(reshape(out.logits, {-1, 6}), reshape(kTgtOut, {-1}), 0).item(), 1e-15);
}

INSTANTIATE_TEST_SUITE_P(
    Variants, Models,
    ::testing::Values(ModelCase{"plain_lstm", tiny()},
                      ModelCase{"plain_gru_bidir_reversed", tiny().cell(CellType::GRU).bidirectional_encoder(true).reverse_source(true)},
                      ModelCase{"bahdanau_gru", tiny().cell(CellType::GRU).attention(Seq2SeqAttention::Bahdanau)},
                      ModelCase{"bahdanau_lstm_bidir_2layer_reversed",
                                tiny().attention(Seq2SeqAttention::Bahdanau).bidirectional_encoder(true).num_layers(2).reverse_source(true)},
                      ModelCase{"luong_general_feeding", tiny().attention(Seq2SeqAttention::Luong)},
                      ModelCase{"luong_dot_rnn", tiny().cell(CellType::RNN).attention(Seq2SeqAttention::Luong).score(AttentionScore::Dot).input_feeding(false)},
                      ModelCase{"luong_concat_bidir", tiny().attention(Seq2SeqAttention::Luong).score(AttentionScore::Concat).bidirectional_encoder(true)},
                      // Any registered cell goes where the built-in ones go: an LSTM-like and a one-state research cell.
                      ModelCase{"bahdanau_peephole_bidir", tiny().cell("peephole_lstm").attention(Seq2SeqAttention::Bahdanau).bidirectional_encoder(true)},
                      ModelCase{"luong_mgu", tiny().cell("mgu").attention(Seq2SeqAttention::Luong)}),
    [](const auto& info) { return info.param.name; });

// With teacher forcing 0 every step reads the model's own previous guess: greedy search's tokens.
TEST(Seq2Seq, NoTeacherForcingFollowsOwnPredictions) {
  Seq2Seq model(tiny().attention(Seq2SeqAttention::Luong).eos_id(5));
  model.eval();
  const Variable tgt_in(full({2, 6}, 1, kInt64));
  const Seq2SeqOutput out = model.forward(kSrc, kLengths, tgt_in, 0.0);
  const auto greedy = greedy_search(model, kSrc, kLengths, SearchOptions(1, 5).max_len(6));
  const auto logits = out.logits.value().to_vector();
  for (std::size_t b = 0; b < 2; ++b)
    for (std::size_t t = 0; t < greedy[b].tokens.size(); ++t) {
      const auto row = logits.begin() + static_cast<std::ptrdiff_t>((b * 6 + t) * 6);
      EXPECT_EQ(std::max_element(row, row + 6) - row, greedy[b].tokens[t]) << b << " " << t;
    }
  // Teacher forcing 1 reads the given tokens instead, so the outputs differ.
  EXPECT_GT(max_abs_diff(model.forward(kSrc, kLengths, tgt_in, 1.0).logits.value(), out.logits.value()), 1e-6);
}

// Target padding: what sits in tgt_in after a sequence's end cannot change its loss (the decoder reads
// those positions only after the sequence's last real token, and pad targets are ignored).
template <class Model>
void expect_target_padding_ignored(Model& model) {
  const Variable tgt_in_a = ids({1, 3, 4, 1, 5, 0}, {2, 3}), tgt_in_b = ids({1, 3, 4, 1, 5, 4}, {2, 3});
  const Variable tgt_out = ids({3, 4, 2, 5, 2, 0}, {2, 3});
  const double a = model.loss(model.forward(kSrc, kLengths, tgt_in_a), tgt_out).item();
  const double b = model.loss(model.forward(kSrc, kLengths, tgt_in_b), tgt_out).item();
  EXPECT_DOUBLE_EQ(a, b);
  // And it is the mean over the 5 real target tokens only.
  const Variable logits = model.forward(kSrc, kLengths, tgt_in_a).logits;
  const Variable ce = cross_entropy(reshape(logits, {-1, 6}), reshape(tgt_out, {-1}), -100, Reduction::None);
  const auto per = ce.value().to_vector();
  EXPECT_NEAR(a, (per[0] + per[1] + per[2] + per[3] + per[4]) / 5, 1e-12);
}

TEST(Seq2Seq, TargetPaddingIsIgnored) {
  Seq2Seq rnn(tiny().attention(Seq2SeqAttention::Bahdanau));
  rnn.to(kFloat64);
  expect_target_padding_ignored(rnn);
  TransformerSeq2Seq transformer(TransformerSeq2SeqOptions(7, 6).d_model(4).nhead(2).num_encoder_layers(1)
                                     .num_decoder_layers(1).dim_feedforward(6).dropout(0).max_len(10));
  transformer.to(kFloat64);
  expect_target_padding_ignored(transformer);
}

TEST(Seq2Seq, ErrorsNameTheProblem) {
  Seq2Seq model(tiny());
  try {
    model.forward(kSrc, ids({5, 2}, {2}), kTgtIn);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("src_lengths[0] = 5 is outside [1, 4]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(model.forward(kSrc, kLengths, kTgtIn, 1.5), Error);
  EXPECT_THROW(Seq2Seq(tiny().attention(Seq2SeqAttention::Luong).score(AttentionScore::Dot).bidirectional_encoder(true)), Error);
  EXPECT_THROW(Seq2Seq(tiny().eos_id(6)), Error);
}

TEST(TransformerSeq2Seq, GradcheckAndCachedStepsEqualForward) {
  TransformerSeq2Seq model(TransformerSeq2SeqOptions(7, 6).d_model(4).nhead(2).num_encoder_layers(1).num_decoder_layers(2)
                               .dim_feedforward(6).dropout(0).max_len(10));
  const auto r = gradcheck_module(model, {}, [&](const In&) { return model.forward(kSrc, kLengths, kTgtInFull).logits; });
  EXPECT_TRUE(r.ok) << r.message;
  const Seq2SeqOutput out = model.forward(kSrc, kLengths, kTgtIn);
  EXPECT_EQ(out.attention.shape(), (Shape{2, 3, 4}));
  DecodeState state = model.start(kSrc, kLengths);
  for (std::int64_t t = 0; t < 3; ++t) {
    Variable w;
    const Variable lp = model.step(squeeze(narrow(kTgtIn, 1, t, 1), 1), state, &w);
    EXPECT_LT(max_abs_diff(lp.value(), log_softmax(squeeze(narrow(out.logits, 1, t, 1), 1), 1).value()), 1e-12);
    EXPECT_LT(max_abs_diff(w.value(), squeeze(narrow(out.attention, 1, t, 1), 1).value()), 1e-12);
  }
}

// Both kinds of model learn to copy short sequences, decoded by beam search.
template <class Model>
double copy_accuracy(Model& model, int steps, double lr) {
  Generator g(7);
  optim::Adam opt(model.parameters(), optim::AdamOptions(lr));
  const std::int64_t batch = 32, len = 5;
  auto batch_of = [&](Variable& src, Variable& tgt_in, Variable& tgt_out) {
    std::vector<std::int64_t> s, ti, to;
    for (std::int64_t b = 0; b < batch; ++b) {
      ti.push_back(1);
      for (std::int64_t t = 0; t < len; ++t) {
        const std::int64_t tok = 3 + static_cast<std::int64_t>(g.next_u64() % 5);
        s.push_back(tok), to.push_back(tok);
        if (t + 1 < len) ti.push_back(tok);
      }
      ti.push_back(s.back()), to.push_back(2);
    }
    src = ids(s, {batch, len}), tgt_in = ids(ti, {batch, len + 1}), tgt_out = ids(to, {batch, len + 1});
  };
  Variable src, tgt_in, tgt_out;
  for (int i = 0; i < steps; ++i) {
    batch_of(src, tgt_in, tgt_out);
    opt.zero_grad();
    model.loss(model.forward(src, Variable(), tgt_in), tgt_out).backward();
    opt.step();
  }
  model.eval();
  batch_of(src, tgt_in, tgt_out);
  const auto best = beam_search(model, src, Variable(), SearchOptions(1, 2).max_len(8).beam_width(3));
  int right = 0;
  for (std::int64_t b = 0; b < batch; ++b) {
    const auto* s = src.value().data<std::int64_t>() + b * len;
    right += best[static_cast<std::size_t>(b)].tokens == std::vector<std::int64_t>(s, s + len);
  }
  return right / double(batch);
}

TEST(Seq2SeqTraining, AttentionModelLearnsToCopy) {
  manual_seed(3);
  Seq2Seq model(Seq2SeqOptions(8, 8).embedding_dim(16).hidden_size(32).cell(CellType::GRU).attention(Seq2SeqAttention::Bahdanau));
  EXPECT_GE(copy_accuracy(model, 300, 1e-2), 0.9);
}

TEST(Seq2SeqTraining, TransformerLearnsToCopy) {
  manual_seed(3);
  TransformerSeq2Seq model(TransformerSeq2SeqOptions(8, 8).d_model(32).nhead(4).num_encoder_layers(1).num_decoder_layers(1)
                               .dim_feedforward(64).dropout(0).max_len(16));
  EXPECT_GE(copy_accuracy(model, 300, 3e-3), 0.9);
}

}  // namespace
}  // namespace kiln::nn

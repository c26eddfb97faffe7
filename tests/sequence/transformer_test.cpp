// Transformer layers, stacks and positional encodings: PyTorch's names, finite differences through
// every parameter (post- and pre-norm, relu and gelu), incremental decoding equal to the full pass.

#include <cmath>

#include <gtest/gtest.h>

#include "layers/gradcheck_module.hpp"
#include "layers/positional.hpp"
#include "sequence/transformer.hpp"
#include "ops/ops.hpp"

namespace kiln::nn {
namespace {

using In = std::vector<Variable>;

Variable randn(const Shape& s, Generator& g, bool grad = false) { return Variable(normal(s, 0, 1, kFloat64, &g), grad); }

std::vector<std::string> names(const Module& m) {
  std::vector<std::string> out;
  for (const auto& [n, p] : m.named_parameters()) out.push_back(n);
  return out;
}

TEST(Transformer, PyTorchParameterNames) {
  const auto o = TransformerLayerOptions(8, 2).dim_feedforward(16);
  EXPECT_EQ(names(TransformerEncoderLayer(o)),
            (std::vector<std::string>{"self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
                                      "self_attn.out_proj.bias", "linear1.weight", "linear1.bias", "linear2.weight",
                                      "linear2.bias", "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"}));
  const auto dec = names(TransformerDecoderLayer(o));
  EXPECT_EQ(dec.size(), 18u);
  EXPECT_EQ(dec[4], "multihead_attn.in_proj_weight");
  EXPECT_EQ(dec.back(), "norm3.bias");
  Transformer t(TransformerOptions(8, 2).num_encoder_layers(2).num_decoder_layers(3).dim_feedforward(16));
  const auto n = names(t);
  EXPECT_EQ(n.front(), "encoder.layers.0.self_attn.in_proj_weight");
  EXPECT_EQ(n.back(), "decoder.norm.bias");
  EXPECT_EQ(n.size(), 2u * 12 + 2 + 3u * 18 + 2);
  // The layers start different (Xavier-uniform afresh), not as clones of one.
  EXPECT_GT(max_abs_diff(t.parameter("encoder.layers.0.linear1.weight").value(),
                         t.parameter("encoder.layers.1.linear1.weight").value()),
            0.0);
}

struct LayerCase {
  std::string name;
  bool norm_first;
  FeedForwardActivation activation;
};
void PrintTo(const LayerCase& c, std::ostream* os) { *os << c.name; }
class TransformerLayers : public ::testing::TestWithParam<LayerCase> {};

TransformerLayerOptions small(const LayerCase& c) {
  return TransformerLayerOptions(6, 2).dim_feedforward(10).dropout(0).norm_first(c.norm_first).activation(c.activation);
}

TEST_P(TransformerLayers, EncoderLayerGradcheck) {
  TransformerEncoderLayer layer(small(GetParam()).batch_first(true));
  Generator g(31);
  const Variable pad(from_data(std::vector<bool>{false, false, false, true, false, false, false, false}, {2, 4}));
  const auto r = gradcheck_module(layer, {randn({2, 4, 6}, g, true)}, [&](const In& v) {
    return layer.forward(v[0], TransformerMasks().src_key_padding_mask(pad));
  });
  EXPECT_TRUE(r.ok) << r.message;
}

TEST_P(TransformerLayers, DecoderLayerGradcheck) {
  TransformerDecoderLayer layer(small(GetParam()));
  Generator g(32);
  const auto r = gradcheck_module(layer, {randn({3, 2, 6}, g, true), randn({4, 2, 6}, g, true)}, [&](const In& v) {
    return layer.forward(v[0], v[1], TransformerMasks().tgt_is_causal(true));
  });
  EXPECT_TRUE(r.ok) << r.message;
}

INSTANTIATE_TEST_SUITE_P(Variants, TransformerLayers,
                         ::testing::Values(LayerCase{"post_norm_relu", false, FeedForwardActivation::ReLU},
                                           LayerCase{"pre_norm_gelu", true, FeedForwardActivation::GELU}),
                         [](const auto& info) { return info.param.name; });

TEST(Transformer, StackGradcheck) {
  Transformer t(TransformerOptions(4, 2).num_encoder_layers(1).num_decoder_layers(2).dim_feedforward(6).dropout(0));
  Generator g(33);
  const auto r = gradcheck_module(t, {randn({3, 1, 4}, g, true), randn({2, 1, 4}, g, true)}, [&](const In& v) {
    return t.forward(v[0], v[1], TransformerMasks().tgt_mask(Variable(causal_mask(2))));
  });
  EXPECT_TRUE(r.ok) << r.message;
}

// Decoding position by position with a DecoderCache equals the full causal pass, for every layer kind.
TEST(Transformer, IncrementalDecodingEqualsFullPass) {
  for (bool norm_first : {false, true}) {
    TransformerDecoder dec(TransformerDecoderLayer(TransformerLayerOptions(8, 2).dim_feedforward(12).dropout(0).batch_first(true).norm_first(norm_first)),
                           3, std::make_shared<LayerNorm>(LayerNormOptions({8})));
    dec.to(kFloat64);
    Generator g(34);
    const Variable tgt = randn({2, 6, 8}, g), memory = randn({2, 5, 8}, g);
    const Variable pad(from_data(std::vector<bool>{false, false, false, false, true, false, false, false, false, false}, {2, 5}));
    const auto masks = TransformerMasks().memory_key_padding_mask(pad);
    const Variable full = dec.forward(tgt, memory, TransformerMasks(masks).tgt_is_causal(true));
    DecoderCache cache;
    std::vector<Variable> steps;
    for (std::int64_t t = 0; t < 6; ++t) {
      steps.push_back(dec.forward(narrow(tgt, 1, t, 1), memory, masks, &cache));
      EXPECT_EQ(cache.length(), t + 1);
    }
    EXPECT_LT(max_abs_diff(concat(steps, 1).value(), full.value()), 1e-12) << "norm_first " << norm_first;
  }
}

TEST(Transformer, CausalFlagEqualsCausalMaskAndMasksMatter) {
  TransformerDecoderLayer layer(TransformerLayerOptions(8, 2).dim_feedforward(12).dropout(0));
  layer.to(kFloat64);
  Generator g(35);
  const Variable tgt = randn({4, 2, 8}, g), memory = randn({3, 2, 8}, g);
  const Variable a = layer.forward(tgt, memory, TransformerMasks().tgt_is_causal(true));
  const Variable b = layer.forward(tgt, memory, TransformerMasks().tgt_mask(Variable(causal_mask(4))));
  const Variable c = layer.forward(tgt, memory, TransformerMasks());
  EXPECT_LT(max_abs_diff(a.value(), b.value()), 1e-14);
  EXPECT_GT(max_abs_diff(a.value(), c.value()), 1e-3);
  // The first position sees only itself, so later target positions cannot change it.
  Tensor changed = tgt.value().clone();
  changed.data<double>()[3 * 2 * 8] += 1.0;
  const Variable d = layer.forward(Variable(changed), memory, TransformerMasks().tgt_is_causal(true));
  EXPECT_LT(max_abs_diff(narrow(a, 0, 0, 3).value(), narrow(d, 0, 0, 3).value()), 1e-14);
}

TEST(Transformer, ErrorsNameLayerAndShapes) {
  try {
    TransformerEncoder enc(TransformerEncoderLayer(TransformerLayerOptions(8, 2)), 2);
    enc.forward(Variable(zeros({5, 3, 6})));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("TransformerEncoder layers.0: TransformerEncoderLayer(d_model=8): src must be "
                                         "[L, B, E] (or unbatched [L, E]) ending in d_model, got [5, 3, 6]"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(TransformerEncoderLayer(TransformerLayerOptions(8, 3)), Error);
  TransformerDecoder dec(TransformerDecoderLayer(TransformerLayerOptions(8, 2)), 1);
  DecoderCache cache;
  EXPECT_THROW(dec.forward(Variable(zeros({1, 2, 8})), Variable(zeros({3, 2, 8})),
                           TransformerMasks().tgt_mask(Variable(causal_mask(1))), &cache),
               Error);
}

TEST(PositionalEncoding, SinusoidsAndOffsets) {
  SinusoidalPositionalEncoding pe(PositionalEncodingOptions(6).max_len(20).dropout(0).batch_first(true));
  EXPECT_TRUE(pe.named_parameters().empty());
  const Tensor& t = pe.table();
  EXPECT_DOUBLE_EQ(t.data<double>()[1 * 6 + 0], std::sin(1.0));
  EXPECT_DOUBLE_EQ(t.data<double>()[1 * 6 + 1], std::cos(1.0));
  EXPECT_DOUBLE_EQ(t.data<double>()[3 * 6 + 4], std::sin(3.0 / std::pow(10000.0, 4.0 / 6)));
  const Variable x(zeros({2, 5, 6}, kFloat64));
  const Variable all = pe.forward(x);
  const Variable tail = pe.forward(narrow(x, 1, 2, 3), 2);
  EXPECT_LT(max_abs_diff(tail.value(), narrow(all, 1, 2, 3).value()), 1e-15);
  EXPECT_THROW(pe.forward(x, 16), Error);
  LearnedPositionalEncoding learned(PositionalEncodingOptions(4).max_len(7).dropout(0));
  EXPECT_EQ(names(learned), (std::vector<std::string>{"weight"}));
  Generator g(36);
  const auto r = gradcheck_module(learned, {randn({3, 2, 4}, g, true)}, [&](const In& v) { return learned.forward(v[0], 1); });
  EXPECT_TRUE(r.ok) << r.message;
}

}  // namespace
}  // namespace kiln::nn

#include <gtest/gtest.h>

#include <sstream>

#include "layers/embedding.hpp"
#include "layers/linear.hpp"
#include "sequence/recurrent.hpp"
#include "layers/sequential.hpp"
#include "layers/summary.hpp"
#include "sequence/transformer.hpp"
#include "ops/ops.hpp"

namespace kiln::nn {
namespace {

Sequential sentiment_model(bool single_bias) {
  // Keras: Embedding(50, 10) -> Bidirectional(SimpleRNN(5)) -> Dense(1).
  return Sequential({std::make_shared<Embedding>(50, 10),
                     std::make_shared<RNN>(RNNOptions(10, 5).bidirectional(true).batch_first(true)
                                               .single_bias(single_bias).return_sequences(false)),
                     std::make_shared<Linear>(10, 1)});
}

TEST(Summary, KerasCountsWithOneBiasPerLayer) {
  Sequential model = sentiment_model(true);
  const Variable ids(zeros({32, 20}, kInt64));
  const std::string s = summary(model, ids);
  EXPECT_NE(s.find("Total params: 671"), std::string::npos) << s;
  EXPECT_NE(s.find("Trainable params: 671"), std::string::npos) << s;
  EXPECT_NE(s.find("0 (Embedding)"), std::string::npos) << s;
  EXPECT_NE(s.find("[32, 20, 10]"), std::string::npos) << s;
  EXPECT_NE(s.find("[32, 10]"), std::string::npos) << s;  // both directions' last states
  EXPECT_NE(s.find("[32, 1]"), std::string::npos) << s;
  EXPECT_EQ(model.forward(ids).shape(), (Shape{32, 1}));
}

TEST(Summary, PyTorchCountsWithTwoBiases) {
  Sequential model = sentiment_model(false);
  const std::string s = summary(model, Variable(zeros({4, 7}, kInt64)));
  EXPECT_NE(s.find("Total params: 681"), std::string::npos) << s;
}

TEST(Summary, NonTrainableParametersAreCounted) {
  Sequential model = sentiment_model(true);
  Variable w = model.parameter("0.weight");
  w.requires_grad_(false);  // frozen embeddings
  const std::string s = summary(model, Variable(zeros({2, 3}, kInt64)));
  EXPECT_NE(s.find("Trainable params: 171"), std::string::npos) << s;
  EXPECT_NE(s.find("Non-trainable params: 500"), std::string::npos) << s;
}

TEST(Summary, AnyModuleListsChildren) {
  LSTM lstm(LSTMOptions(3, 4).num_layers(2));
  const std::string s = summary(lstm, Variable(zeros({5, 2, 3})));
  EXPECT_NE(s.find("output of LSTM"), std::string::npos) << s;
  EXPECT_NE(s.find("[5, 2, 4]"), std::string::npos) << s;
  EXPECT_NE(s.find("Total params: 304"), std::string::npos) << s;  // 16 (3+4+2) + 16 (4+4+2), as PyTorch
}

// A user's layer with a long type name: the columns widen for it and stay aligned.
class AVeryLongNamedResearchLayerForTesting : public Module {
 public:
  AVeryLongNamedResearchLayerForTesting() : Module("AVeryLongNamedResearchLayerForTesting") { reset(); }
  void reset() override { w_ = register_parameter("weight", zeros({3, 3})); }
  Variable forward(const Variable& x) override { return matmul(x, w_); }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  Variable w_;
};

TEST(Summary, LongTypeNamesKeepTheColumnsAligned) {
  Sequential model({std::make_shared<AVeryLongNamedResearchLayerForTesting>(), std::make_shared<Linear>(3, 1)});
  const std::string s = summary(model, Variable(zeros({2, 3})));
  std::vector<std::string> rows;
  std::istringstream lines(s);
  for (std::string line; std::getline(lines, line);)
    if (line.find(" (") != std::string::npos || line.find("Layer (type)") != std::string::npos) rows.push_back(line);
  ASSERT_EQ(rows.size(), 3u) << s;
  for (const auto& r : rows) EXPECT_EQ(r.size(), rows[0].size()) << s;          // Param # ends in one column
  EXPECT_EQ(rows[1].find("[2, 3]"), rows[0].find("Output Shape")) << s;        // shapes start under their header
  EXPECT_EQ(rows[2].find("[2, 1]"), rows[0].find("Output Shape")) << s;
  EXPECT_NE(s.find("0 (AVeryLongNamedResearchLayerForTesting)"), std::string::npos) << s;
}

// Any model: each child it calls as (*child)(x) shows its output shape, from a forward hook.
class TwoTowers : public Module {
 public:
  TwoTowers() : Module("TwoTowers") { reset(); }
  void reset() override {
    embed = register_module("embed", std::make_shared<Embedding>(10, 4));
    rnn = register_module("rnn", std::make_shared<GRU>(GRUOptions(4, 6).batch_first(true).return_sequences(false)));
    head = register_module("head", std::make_shared<Linear>(6, 3));
  }
  Variable forward(const Variable& ids) override { return (*head)((*rnn)((*embed)(ids))); }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::shared_ptr<Embedding> embed;
  std::shared_ptr<GRU> rnn;
  std::shared_ptr<Linear> head;
};

TEST(Summary, AnyModelShowsItsChildrensOutputShapes) {
  TwoTowers model;
  const std::string s = summary(model, Variable(zeros({2, 7}, kInt64)));
  EXPECT_NE(s.find("embed (Embedding)"), std::string::npos) << s;
  for (const char* row : {"[2, 7, 4]", "[2, 6]", "[2, 3]"}) EXPECT_NE(s.find(row), std::string::npos) << row << "\n" << s;
  EXPECT_NE(s.find("output of TwoTowers"), std::string::npos) << s;
  EXPECT_EQ(s.find(" - "), std::string::npos) << s;  // every child's shape is known
  // The hooks are gone afterwards: a second summary sees the same, and forward runs hook-free.
  EXPECT_EQ(summary(model, Variable(zeros({2, 7}, kInt64))), s);
}

// Kiln's own layers call their children through the call operator: a Transformer layer's feed-forward
// shows its widths; its attention, called with three inputs, shows none.
TEST(Summary, ATransformerLayerShowsItsSublayers) {
  TransformerEncoderLayer layer(TransformerLayerOptions(8, 2).dim_feedforward(16));
  const std::string s = summary(layer, Variable(zeros({5, 2, 8})));
  auto row = [&](const std::string& name) {
    const auto at = s.find(name);
    return at == std::string::npos ? std::string() : s.substr(at, s.find('\n', at) - at);
  };
  EXPECT_NE(row("linear1 (Linear)").find("[5, 2, 16]"), std::string::npos) << s;
  EXPECT_NE(row("norm2 (LayerNorm)").find("[5, 2, 8]"), std::string::npos) << s;
  EXPECT_NE(row("self_attn (MultiheadAttention)").find(" - "), std::string::npos) << s;
}

TEST(Module, ForwardHooksSeeCallsThroughTheCallOperator) {
  Linear lin(3, 2);
  int calls = 0;
  Shape seen;
  const std::size_t h = lin.register_forward_hook([&](const Module& m, const Variable& in, const Variable& out) {
    ++calls;
    seen = out.shape();
    EXPECT_EQ(&m, &lin);
    EXPECT_EQ(in.shape(), (Shape{5, 3}));
  });
  lin(Variable(zeros({5, 3})));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(seen, (Shape{5, 2}));
  lin.forward(Variable(zeros({5, 3})));  // unobserved, as in PyTorch
  EXPECT_EQ(calls, 1);
  lin.remove_forward_hook(h);
  lin(Variable(zeros({5, 3})));
  EXPECT_EQ(calls, 1);
}

TEST(Summary, WithoutAnExampleInput) {
  Sequential model = sentiment_model(false);
  const std::string s = summary(static_cast<const Module&>(model));
  EXPECT_NE(s.find("1 (RNN)"), std::string::npos) << s;
  EXPECT_NE(s.find("170"), std::string::npos) << s;
  EXPECT_NE(s.find("Total params: 681"), std::string::npos) << s;
}

}  // namespace
}  // namespace kiln::nn

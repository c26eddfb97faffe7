#include <cmath>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "io/safetensors.hpp"
#include "layers/activation.hpp"
#include "layers/embedding.hpp"
#include "layers/init.hpp"
#include "layers/layer_norm.hpp"
#include "layers/linear.hpp"
#include "sequence/recurrent.hpp"
#include "layers/sequential.hpp"
#include "ops/ops.hpp"

namespace kiln::nn {
namespace {

// A two-level model, as a user would write one.
class Encoder : public Module {
 public:
  Encoder() : Module("Encoder") { reset(); }
  void reset() override {
    embed = register_module("embed", std::make_shared<Embedding>(10, 4));
    lstm = register_module("lstm", std::make_shared<LSTM>(LSTMOptions(4, 3)));
    head = register_module("head", std::make_shared<Linear>(3, 2));
  }
  Variable forward(const Variable& ids) override { return head->forward(lstm->forward(embed->forward(ids))); }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::shared_ptr<Embedding> embed;
  std::shared_ptr<LSTM> lstm;
  std::shared_ptr<Linear> head;
};

std::vector<std::string> names(const Module& m) {
  std::vector<std::string> out;
  for (const auto& [n, p] : m.named_parameters()) out.push_back(n);
  return out;
}

TEST(Module, HierarchicalNamesInRegistrationOrder) {
  Encoder e;
  EXPECT_EQ(names(e), (std::vector<std::string>{"embed.weight", "lstm.weight_ih_l0", "lstm.weight_hh_l0",
                                                "lstm.bias_ih_l0", "lstm.bias_hh_l0", "head.weight", "head.bias"}));
  EXPECT_EQ(e.parameter("lstm.weight_hh_l0").shape(), (Shape{12, 3}));
  EXPECT_EQ(e.num_parameters(), 40 + (48 + 36 + 12 + 12) + 6 + 2);
  EXPECT_EQ(e.parameters(false).size(), 0u);
  try {
    e.parameter("lstm.weight");
    FAIL();
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("lstm.weight_ih_l0"), std::string::npos) << err.what();
  }
}

TEST(Module, StrictLoadReportsEveryProblemByName) {
  Encoder e;
  StateDict d = e.state_dict();
  d.erase("head.bias");
  d["head.extra"] = zeros({1});
  d["lstm.weight_ih_l0"] = zeros({3, 3});
  const Tensor before = e.parameter("head.weight").value().clone();
  try {
    e.load_state_dict(d);
    FAIL();
  } catch (const Error& err) {
    const std::string w = err.what();
    EXPECT_NE(w.find("missing keys: head.bias"), std::string::npos) << w;
    EXPECT_NE(w.find("unexpected keys: head.extra"), std::string::npos) << w;
    EXPECT_NE(w.find("lstm.weight_ih_l0 (expected float32 [12, 4], got float32 [3, 3])"), std::string::npos) << w;
  }
  EXPECT_TRUE(equal(e.parameter("head.weight").value(), before)) << "a failed load must change nothing";
  d["lstm.weight_ih_l0"] = zeros({12, 4});
  EXPECT_NO_THROW(e.load_state_dict(d, /*strict=*/false));
  EXPECT_EQ(e.parameter("lstm.weight_ih_l0").value().to_vector(), std::vector<double>(48, 0.0));
}

TEST(Module, SaveAndLoadThroughSafetensors) {
  manual_seed(3);
  Encoder a;
  const std::string path = ::testing::TempDir() + "/kiln_module.safetensors";
  save(a, path);
  Encoder b;
  load(b, path);
  for (const auto& [n, p] : a.named_parameters()) EXPECT_TRUE(equal(p.value(), b.parameter(n).value())) << n;
  const io::Safetensors raw = io::load_safetensors(path);
  EXPECT_EQ(raw.tensors.count("lstm.bias_hh_l0"), 1u);  // PyTorch's names, readable by safetensors.torch
}

TEST(Module, CloneIsDeepAndLeavesTheGeneratorAlone) {
  manual_seed(5);
  Encoder a;
  a.eval();
  const Generator before = default_generator();
  auto b = std::dynamic_pointer_cast<Encoder>(a.clone());
  ASSERT_TRUE(b);
  Generator g1 = before, g2 = default_generator();
  EXPECT_EQ(g1.next_u64(), g2.next_u64()) << "clone() must not draw from the default generator";
  EXPECT_FALSE(b->is_training());
  for (const auto& [n, p] : a.named_parameters()) EXPECT_TRUE(equal(p.value(), b->parameter(n).value())) << n;
  Tensor w = b->head->weight.value();
  w.fill_(0);
  EXPECT_NE(a.head->weight.value().to_vector(), w.to_vector());
  // The clone's members and registry are the same variables.
  EXPECT_TRUE(b->head->weight.value().is_same(b->parameter("head.weight").value()));
  // And its dtype is the original's.
  a.to(kFloat64);
  const auto c = a.clone();
  for (const auto& [n, p] : c->named_parameters()) EXPECT_EQ(p.dtype(), kFloat64) << n;
  for (const auto& [n, p] : a.named_parameters()) EXPECT_TRUE(equal(p.value(), c->parameter(n).value())) << n;
}

TEST(Module, TrainEvalZeroGradAndDtype) {
  Encoder e;
  e.eval();
  EXPECT_FALSE(e.lstm->is_training());
  e.train();
  EXPECT_TRUE(e.head->is_training());
  Variable ids(from_data(std::vector<std::int64_t>{1, 2, 3}, {3, 1}));
  sum(e.forward(ids)).backward();
  EXPECT_TRUE(e.head->weight.grad().defined());
  e.zero_grad();
  for (const auto& p : e.parameters()) EXPECT_FALSE(p.grad().defined());
  e.to(kFloat64);
  for (const auto& p : e.parameters()) EXPECT_EQ(p.dtype(), kFloat64);
  EXPECT_EQ(e.forward(ids).dtype(), kFloat64);
}

TEST(Module, PrintsLikePyTorch) {
  Encoder e;
  std::ostringstream os;
  os << e;
  EXPECT_NE(os.str().find("(lstm): LSTM(4, 3)"), std::string::npos) << os.str();
  EXPECT_NE(os.str().find("(head): Linear(in_features=3, out_features=2, bias=true)"), std::string::npos) << os.str();
}

// A module with both an extra representation and children prints the extra line among the children,
// and every parenthesis it opens is closed, as PyTorch does.
class Block : public Module {
 public:
  Block() : Module("Block") { reset(); }
  void reset() override { proj = register_module("proj", std::make_shared<Linear>(2, 2)); }
  std::string extra_repr() const override { return "scale=0.5"; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::shared_ptr<Linear> proj;
};

TEST(Module, PrintsExtraReprAndChildrenClosed) {
  Sequential outer({std::make_shared<Block>()});
  std::ostringstream os;
  os << outer;
  EXPECT_EQ(os.str(), "Sequential(\n  (0): Block(\n    scale=0.5\n    (proj): Linear(in_features=2, out_features=2, bias=true)\n  )\n)");
}

TEST(Layers, LinearEmbeddingLayerNormDropoutSequential) {
  manual_seed(1);
  Linear fc(LinearOptions(4, 3).bias(false));
  EXPECT_EQ(fc.named_parameters().size(), 1u);
  EXPECT_THROW(fc.forward(Variable(zeros({2, 5}))), Error);
  for (double w : fc.weight.value().to_vector()) EXPECT_LE(std::abs(w), 0.5);  // U(-1/sqrt(4), 1/sqrt(4))

  Embedding emb(EmbeddingOptions(5, 2).padding_idx(0));
  EXPECT_EQ(narrow(emb.weight, 0, 0, 1).value().to_vector(), (std::vector<double>{0, 0}));
  EXPECT_EQ(emb.forward(Variable(from_data(std::vector<std::int64_t>{4, 0}, {1, 2}))).shape(), (Shape{1, 2, 2}));

  LayerNorm ln(LayerNormOptions({4}));
  const Variable y = ln.forward(Variable(from_data({1.f, 2.f, 3.f, 4.f}, {1, 4})));
  EXPECT_NEAR(mean(y).item(), 0.0, 1e-6);

  Dropout drop(0.5);
  drop.eval();
  const Variable ones_in(ones({100}));
  EXPECT_EQ(drop.forward(ones_in).value().to_vector(), std::vector<double>(100, 1.0));
  drop.train();
  EXPECT_NE(drop.forward(ones_in).value().to_vector(), std::vector<double>(100, 1.0));

  Sequential net({std::make_shared<Linear>(4, 8), Tanh(), std::make_shared<Linear>(8, 1)});
  EXPECT_EQ(names(net), (std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"}));
  EXPECT_EQ(net.forward(Variable(zeros({3, 4}))).shape(), (Shape{3, 1}));
  try {
    net.forward(Variable(zeros({3, 5})));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Sequential[0] (Linear)"), std::string::npos) << e.what();
  }
  auto copy = net.clone();
  EXPECT_EQ(names(*copy), names(net));
}

TEST(Layers, GloveLoadingAndErrors) {
  const std::string path = ::testing::TempDir() + "/kiln_glove.txt";
  {
    std::ofstream f(path);
    f << "the 0.1 0.2\ncat -1 2.5\nunused 9 9\n";
  }
  Embedding emb(3, 2);
  EXPECT_EQ(emb.load_glove(path, {{"the", 1}, {"cat", 2}, {"dog", 0}}), 2);
  const auto w = emb.weight.value().to_vector();
  EXPECT_NEAR(w[2], 0.1, 1e-7);
  EXPECT_NEAR(w[5], 2.5, 1e-7);
  {
    std::ofstream f(path);
    f << "the 0.1 0.2\ncat 1 x2\n";
  }
  try {
    emb.load_glove(path, {{"the", 1}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("kiln_glove.txt:2:7: 'x2' is not a number"), std::string::npos) << e.what();
  }
}

TEST(Init, ShapesBoundsAndOrthogonality) {
  Generator g(2);
  for (double v : init::xavier_uniform({30, 20}, 1, kFloat32, &g).to_vector()) EXPECT_LE(std::abs(v), std::sqrt(6.0 / 50));
  for (double v : init::kaiming_uniform({30, 20}, kFloat32, &g).to_vector()) EXPECT_LE(std::abs(v), std::sqrt(6.0 / 20));
  EXPECT_EQ(init::fans({8, 3, 5}), (std::pair<std::int64_t, std::int64_t>{15, 40}));
  for (Shape s : {Shape{4, 6}, Shape{6, 4}}) {
    const Tensor q = init::orthogonal(s, 1, kFloat64, &g);
    const bool wide = s[0] <= s[1];
    const Variable qv(q);
    const Tensor gram = wide ? matmul(qv, transpose(qv, 0, 1)).value() : matmul(transpose(qv, 0, 1), qv).value();
    const auto v = gram.to_vector();
    const std::int64_t n = std::min(s[0], s[1]);
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < n; ++j) EXPECT_NEAR(v[static_cast<std::size_t>(i * n + j)], i == j ? 1.0 : 0.0, 1e-12);
  }
  // QR through xt::linalg (LAPACK): a gain scales it, the same seed gives the same matrix, and more than
  // two dimensions flatten the trailing ones (PyTorch's convention).
  Generator g1(9), g2(9);
  const Tensor a3 = init::orthogonal({4, 2, 3}, 2.0, kFloat64, &g1);
  EXPECT_EQ(a3.shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(a3.to_vector(), init::orthogonal({4, 2, 3}, 2.0, kFloat64, &g2).to_vector());
  const Variable flat(a3.reshape({4, 6}));
  const auto gram = matmul(flat, transpose(flat, 0, 1)).value().to_vector();
  for (std::int64_t i = 0; i < 4; ++i)
    for (std::int64_t j = 0; j < 4; ++j) EXPECT_NEAR(gram[static_cast<std::size_t>(i * 4 + j)], i == j ? 4.0 : 0.0, 1e-12);
  Tensor b = zeros({8});
  init::lstm_forget_bias_(b, 1.0);
  EXPECT_EQ(b.to_vector(), (std::vector<double>{0, 0, 1, 1, 0, 0, 0, 0}));
}

}  // namespace
}  // namespace kiln::nn

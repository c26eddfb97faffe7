#include <gtest/gtest.h>

#include <algorithm>

#include "fusion/kernel_choice.hpp"
#include "layers/gradcheck_module.hpp"
#include "sequence/research_layers.hpp"
#include "ops/ops.hpp"
#include "sequence/recurrent.hpp"
#include "tensor/error.hpp"

namespace kiln::nn {
namespace {

using In = std::vector<Variable>;

std::vector<std::string> names(const Module& m) {
  std::vector<std::string> out;
  for (const auto& [n, p] : m.named_parameters()) out.push_back(n);
  return out;
}

TEST(Recurrent, PyTorchNamesAndShapes) {
  LSTM lstm(LSTMOptions(3, 5).num_layers(2).bidirectional(true));
  const auto n = names(lstm);
  ASSERT_EQ(n.size(), 16u);
  EXPECT_EQ(n[0], "weight_ih_l0");
  EXPECT_EQ(n[4], "weight_ih_l0_reverse");
  EXPECT_EQ(n[15], "bias_hh_l1_reverse");
  EXPECT_EQ(lstm.parameter("weight_ih_l1").shape(), (Shape{20, 10}));
  EXPECT_EQ(GRU(GRUOptions(3, 5).bias(false)).named_parameters().size(), 2u);
  RNN rnn(RNNOptions(4, 6));
  const auto r = rnn.forward(Variable(zeros({7, 2, 4})), {});
  EXPECT_EQ(r.output.shape(), (Shape{7, 2, 6}));
  EXPECT_EQ(r.h_n.shape(), (Shape{1, 2, 6}));
  EXPECT_FALSE(r.c_n.defined());
  const auto l = lstm.forward(Variable(zeros({7, 2, 3})), {});
  EXPECT_EQ(l.output.shape(), (Shape{7, 2, 10}));
  EXPECT_EQ(l.c_n.shape(), (Shape{4, 2, 5}));
}

struct LayerCase {
  std::string name;
  std::function<std::shared_ptr<Recurrent>()> make;
  bool lengths;
};
void PrintTo(const LayerCase& c, std::ostream* os) { *os << c.name; }

class Layers : public ::testing::TestWithParam<LayerCase> {};

// Finite differences through a whole layer: input, initial states and every parameter.
TEST_P(Layers, Gradcheck) {
  auto layer = GetParam().make();
  const auto& o = layer->options();
  const int dirs = o.bidirectional_ ? 2 : 1;
  const std::int64_t T = 3, B = 3, H = o.hidden_size_;
  Generator g(21);
  const Shape xs = o.batch_first_ ? Shape{B, T, o.input_size_} : Shape{T, B, o.input_size_};
  In in{Variable(normal(xs, 0, 1, kFloat64, &g), true)};
  const std::size_t states = layer->cell(0)->state_size();
  for (std::size_t i = 0; i < states; ++i) in.emplace_back(normal({o.num_layers_ * dirs, B, H}, 0, 1, kFloat64, &g), true);
  const Variable lengths = GetParam().lengths ? Variable(from_data(std::vector<std::int64_t>{3, 1, 2})) : Variable();
  const auto r = gradcheck_module(*layer, in, [&](const In& v) {
    const auto out = layer->forward(v[0], In(v.begin() + 1, v.end()), lengths);
    In parts{reshape(out.output, {-1}), reshape(out.h_n, {-1})};
    if (out.c_n.defined()) parts.push_back(reshape(out.c_n, {-1}));
    return concat(parts, 0);
  });
  EXPECT_TRUE(r.ok) << GetParam().name << ": " << r.message;
}

std::vector<LayerCase> layer_cases() {
  return {
      {"rnn_relu_2layer", [] { return std::make_shared<RNN>(RNNOptions(2, 3).num_layers(2).nonlinearity(Nonlinearity::ReLU)); }, false},
      {"lstm_bidir_batch_first", [] { return std::make_shared<LSTM>(LSTMOptions(2, 3).bidirectional(true).batch_first(true)); }, false},
      {"lstm_2layer_bidir_lengths", [] { return std::make_shared<LSTM>(LSTMOptions(2, 2).num_layers(2).bidirectional(true)); }, true},
      {"lstm_generic_bidir_batch_first", [] { return std::make_shared<LSTM>(LSTMOptions(2, 3).bidirectional(true).batch_first(true).impl(Impl::Generic)); }, false},
      {"lstm_generic_2layer_bidir_lengths", [] { return std::make_shared<LSTM>(LSTMOptions(2, 2).num_layers(2).bidirectional(true).impl(Impl::Generic)); }, true},
      {"gru_2layer_lengths", [] { return std::make_shared<GRU>(GRUOptions(2, 3).num_layers(2)); }, true},
      {"layer_norm_lstm_bidir_lengths", [] { return std::make_shared<LayerNormLSTM>(RecurrentOptions(2, 3).bidirectional(true)); }, true},
      {"peephole_lstm_2layer", [] { return std::make_shared<PeepholeLSTM>(RecurrentOptions(2, 2).num_layers(2)); }, false},
      {"gru_cho_bidir", [] { return std::make_shared<GRU>(GRUOptions(2, 3).bidirectional(true).reset_after(false)); }, false},
      {"rnn_relu_bidir_lengths", [] { return std::make_shared<RNN>(RNNOptions(2, 3).bidirectional(true).nonlinearity(Nonlinearity::ReLU)); }, true},
      {"mgu_2layer_lengths", [] { return std::make_shared<MGU>(RecurrentOptions(2, 3).num_layers(2)); }, true},
      {"lstm_fgr_2layer_bidir_lengths", [] { return make_recurrent("lstm_fgr", RecurrentOptions(2, 2).num_layers(2).bidirectional(true)); }, true},
      {"lstm_cifg_bidir_lengths", [] { return make_recurrent("lstm_cifg", RecurrentOptions(2, 3).bidirectional(true)); }, true},
      {"lstm_noaf_2layer", [] { return make_recurrent("lstm_noaf", RecurrentOptions(2, 2).num_layers(2)); }, false},
  };
}

INSTANTIATE_TEST_SUITE_P(Generic, Layers, ::testing::ValuesIn(layer_cases()),
                         [](const ::testing::TestParamInfo<LayerCase>& i) { return i.param.name; });

// Note [Variable lengths]: each sequence behaves as if run alone, truncated to its length.
TEST(Recurrent, LengthsMatchRunningEachSequenceAlone) {
  manual_seed(4);
  LSTM lstm(LSTMOptions(3, 4).bidirectional(true).batch_first(true));
  lstm.to(kFloat64);
  const std::vector<std::int64_t> len{5, 2, 4};
  const Variable x(randn({3, 5, 3}, kFloat64));
  const auto all = lstm.forward(x, {}, Variable(from_data(len)));
  for (std::int64_t b = 0; b < 3; ++b) {
    const Variable xb = narrow(narrow(x, 0, b, 1), 1, 0, len[static_cast<std::size_t>(b)]);
    const auto alone = lstm.forward(xb, {});
    const Variable ob = narrow(all.output, 0, b, 1);
    EXPECT_LT(max_abs_diff(narrow(ob, 1, 0, len[static_cast<std::size_t>(b)]).value(), alone.output.value()), 1e-14) << b;
    if (len[static_cast<std::size_t>(b)] < 5)
      EXPECT_EQ(sum(abs(narrow(ob, 1, len[static_cast<std::size_t>(b)], 5 - len[static_cast<std::size_t>(b)]))).item(), 0.0);
    EXPECT_LT(max_abs_diff(narrow(all.h_n, 1, b, 1).value(), alone.h_n.value()), 1e-14) << b;
    EXPECT_LT(max_abs_diff(narrow(all.c_n, 1, b, 1).value(), alone.c_n.value()), 1e-14) << b;
  }
}

// Compiled kernels off for the rest of a scope: the claims and the graph pass alone (Note [Kernel claims] 1-3).
struct NoCompiledKernels {
  NoCompiledKernels() { plugins::set_compiled_kernels(false); }
  ~NoCompiledKernels() { plugins::set_compiled_kernels(true); }
};

TEST(Recurrent, AutoChoosesAFusedKernelWhenOneRunsTheCell) {
  EXPECT_TRUE(LSTM(LSTMOptions(3, 4)).uses_fused());
  EXPECT_FALSE(LSTM(LSTMOptions(3, 4).impl(Impl::Generic)).uses_fused());
  EXPECT_TRUE(GRU(GRUOptions(3, 4)).uses_fused());
  EXPECT_TRUE(GRU(GRUOptions(3, 4).reset_after(false)).uses_fused());
  EXPECT_TRUE(RNN(RNNOptions(3, 4).nonlinearity(Nonlinearity::ReLU)).uses_fused());
  EXPECT_TRUE(LSTM(LSTMOptions(3, 4).single_bias(true)).uses_fused());  // compiled: no kernel takes one bias
  {
    NoCompiledKernels off;
    EXPECT_FALSE(LSTM(LSTMOptions(3, 4).single_bias(true)).uses_fused());
  }
  EXPECT_TRUE(PeepholeLSTM(RecurrentOptions(3, 4)).uses_fused());
  EXPECT_TRUE(LayerNormLSTM(RecurrentOptions(3, 4)).uses_fused());
  // Same weights, both implementations: the same numbers.
  manual_seed(9);
  LSTM fused(LSTMOptions(3, 5).num_layers(2).bidirectional(true).batch_first(true));
  LSTM generic(LSTMOptions(3, 5).num_layers(2).bidirectional(true).batch_first(true).impl(Impl::Generic));
  generic.load_state_dict(fused.state_dict());
  const Variable x(randn({4, 6, 3}));
  const Variable len(from_data(std::vector<std::int64_t>{6, 2, 0, 5}));
  const auto a = fused.forward(x, {}, len), b = generic.forward(x, {}, len);
  EXPECT_TRUE(allclose(a.output.value(), b.output.value(), 1e-5, 1e-6));
  EXPECT_TRUE(allclose(a.h_n.value(), b.h_n.value(), 1e-5, 1e-6));
  EXPECT_TRUE(allclose(a.c_n.value(), b.c_n.value(), 1e-5, 1e-6));
}

TEST(Recurrent, BatchFirstMatchesTimeMajor) {
  manual_seed(6);
  GRU tm(GRUOptions(3, 4).num_layers(2));
  GRU bf(GRUOptions(3, 4).num_layers(2).batch_first(true));
  bf.load_state_dict(tm.state_dict());
  const Variable x(randn({5, 2, 3}));
  const auto a = tm.forward(x, {});
  const auto b = bf.forward(transpose(x, 0, 1), {});
  EXPECT_LT(max_abs_diff(transpose(b.output, 0, 1).value(), a.output.value()), 1e-6);
  EXPECT_TRUE(allclose(a.h_n.value(), b.h_n.value(), 1e-6, 1e-6));
}

TEST(Recurrent, DropoutOnlyBetweenLayersAndOnlyWhileTraining) {
  manual_seed(7);
  LSTM one(LSTMOptions(3, 4).dropout(0.9));  // one layer: dropout has nowhere to go
  const Variable x(randn({4, 2, 3}));
  EXPECT_TRUE(equal(one.forward(x).value(), one.forward(x).value()));
  LSTM two(LSTMOptions(3, 4).num_layers(2).dropout(0.5));
  two.eval();
  EXPECT_TRUE(equal(two.forward(x).value(), two.forward(x).value()));
  two.train();
  EXPECT_FALSE(equal(two.forward(x).value(), two.forward(x).value()));
}

TEST(Recurrent, UnbatchedInput) {
  RNN rnn(RNNOptions(3, 2).batch_first(true));
  const Variable x(randn({4, 3}));
  const auto r = rnn.forward(x, {});
  EXPECT_EQ(r.output.shape(), (Shape{4, 2}));
  EXPECT_EQ(r.h_n.shape(), (Shape{1, 2}));
  const auto batched = rnn.forward(unsqueeze(x, 0), {});
  EXPECT_TRUE(equal(squeeze(batched.output, 0).value(), r.output.value()));
}

// A user's cell gets stacking, both directions and lengths from the layer, with suffixed names.
class MinimalGatedUnit : public RecurrentCell {
 public:
  MinimalGatedUnit(std::int64_t in, std::int64_t hidden) : RecurrentCell("MGU", in, hidden) { reset(); }
  void reset() override { register_gate_parameters(2, true); }
  State step(const Variable& x, const State& s) override {
    check_step(x, s);
    const std::int64_t H = hidden_size();
    const Variable gi = linear(x, weight_ih_, bias_ih_);
    const Variable f = sigmoid(narrow(gi, 1, 0, H) + linear(s[0], narrow(weight_hh_, 0, 0, H), narrow(bias_hh_, 0, 0, H)));
    const Variable n = tanh(narrow(gi, 1, H, H) + linear(f * s[0], narrow(weight_hh_, 0, H, H), narrow(bias_hh_, 0, H, H)));
    return {(1.0 - f) * s[0] + f * n};
  }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
};

TEST(Recurrent, UserCellGetsTheWholeLayer) {
  Recurrent layer("MGULayer", RecurrentOptions(3, 4).num_layers(2).bidirectional(true),
                  [](std::int64_t in, std::int64_t h, const RecurrentOptions&) { return std::make_shared<MinimalGatedUnit>(in, h); });
  EXPECT_EQ(layer.parameter("weight_hh_l1_reverse").shape(), (Shape{8, 4}));
  const auto r = layer.forward(Variable(randn({5, 2, 3})), {}, Variable(from_data(std::vector<std::int64_t>{5, 3})));
  EXPECT_EQ(r.output.shape(), (Shape{5, 2, 8}));
  auto copy = layer.clone();
  EXPECT_EQ(copy->named_parameters().size(), layer.named_parameters().size());
}

TEST(Recurrent, ClearErrors) {
  NoCompiledKernels off;  // (a single-bias LSTM would run compiled)
  LSTM lstm(LSTMOptions(3, 4).num_layers(2));
  auto expect = [](const std::function<void()>& f, const std::string& part) {
    try {
      f();
      ADD_FAILURE() << "expected an error mentioning " << part;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  expect([&] { lstm.forward(Variable(zeros({5, 2, 7}))); }, "LSTM(input_size=3): input of shape [5, 2, 7]");
  expect([&] { lstm.forward(Variable(zeros({5, 2, 3})), {Variable(zeros({2, 2, 4}))}); }, "expected 2 initial state");
  expect([&] { lstm.forward(Variable(zeros({5, 2, 3})), {Variable(zeros({1, 2, 4})), Variable(zeros({1, 2, 4}))}); },
         "initial state h0 must be [2, 2, 4]");
  expect([&] { lstm.forward(Variable(zeros({5, 2, 3})), {}, Variable(from_data(std::vector<std::int64_t>{5, 6}))); },
         "lengths[1] = 6 is outside [0, 5]");
  expect([&] { lstm.forward(Variable(zeros({5, 2, 3})), {}, Variable(from_data({5.0, 2.0}))); }, "lengths must be int64");
  expect([] { LSTM bad(LSTMOptions(0, 4)); }, "input_size, hidden_size and num_layers must be positive");
  expect([] { MGU(RecurrentOptions(3, 4).impl(Impl::Fused)).forward(Variable(zeros({2, 1, 3}))); },
         "MGU: impl is fused but MGUCell claims kernel 'mgu', which no plugin provides");  // its kernel is a plugin's
  expect([] { LSTM(LSTMOptions(3, 4).single_bias(true).impl(Impl::Fused)).forward(Variable(zeros({2, 1, 3}))); },
         "kernel 'lstm' takes parameters weight_ih, weight_hh, bias_ih, bias_hh but LSTMCell has 'bias'");
}

}  // namespace
}  // namespace kiln::nn

namespace kiln::nn {
namespace {

// RecurrentOptions::forget_bias: the forget gate's rows of bias_ih (or the single bias) start at b and
// those of bias_hh at 0, on every layer and direction, for any cell that names an "f" gate; a cell
// without one, or without biases, is refused by name.
TEST(Recurrent, ForgetBiasOpensTheForgetGateOfEveryCellThatHasOne) {
  for (const char* cell : {"lstm", "peephole_lstm", "lstm_nig", "layer_norm_lstm", "mgu"}) {
    SCOPED_TRACE(cell);
    auto layer = make_recurrent(cell, RecurrentOptions(3, 4).num_layers(2).bidirectional(true).forget_bias(1.0));
    const std::vector<std::string> gates = layer->cell(0)->gate_names();
    const auto k = static_cast<std::int64_t>(std::find(gates.begin(), gates.end(), "f") - gates.begin());
    int seen = 0;
    for (const auto& [name, p] : layer->named_parameters()) {
      const bool first = name.rfind("bias_ih", 0) == 0 || name.rfind("bias_l", 0) == 0, second = name.rfind("bias_hh", 0) == 0;
      if (!first && !second) continue;
      ++seen;
      const auto v = p.value().to_vector();
      for (std::int64_t j = 0; j < static_cast<std::int64_t>(v.size()); ++j)
        if (j / 4 == k) EXPECT_EQ(v[static_cast<std::size_t>(j)], first ? 1.0 : 0.0) << name << "[" << j << "]";
    }
    EXPECT_GE(seen, 4) << "a bias per layer and direction";
  }
  // Without the option, PyTorch's uniform init stays.
  auto plain = make_recurrent("lstm", RecurrentOptions(3, 4));
  EXPECT_NE(plain->parameter("bias_ih_l0").value().to_vector()[4], 1.0);
  for (const auto& [cell, says] : std::vector<std::pair<std::string, std::string>>{
           {"gru", "forget_bias needs a forget gate, and kiln::nn::GRUCell has gates r, z, n"},
           {"rnn_tanh", "kiln::nn::RNNCell has no named gates"}}) {
    try {
      make_recurrent(cell, RecurrentOptions(3, 4).forget_bias(1.0));
      FAIL() << cell;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
    }
  }
  try {
    make_recurrent("lstm", RecurrentOptions(3, 4).bias(false).forget_bias(1.0));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("forget_bias needs a bias, and kiln::nn::LSTMCell has none"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kiln::nn

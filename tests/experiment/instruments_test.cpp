// Instruments for recurrent research: gradient flow through time on the generic graph and with a fused
// layer, spectra by LAPACK, step Jacobians, gate saturation by the activation probe, and records that
// leave training untouched.

#include <cmath>
#include <filesystem>

#include <gtest/gtest.h>

#include "experiment/instruments.hpp"
#include "experiment/run_report.hpp"
#include "experiment/trainer.hpp"
#include "io/atomic_file.hpp"
#include "io/safetensors.hpp"
#include "layers/gradient_flow.hpp"
#include "ops/activation_probe.hpp"
#include "ops/ops.hpp"
#include "sequence/recurrent.hpp"
#include "tensor/linalg.hpp"
#include "tensor/math.hpp"
#include "tensor/random.hpp"

namespace kiln::experiment {
namespace {

// A model of one recurrent layer whose loss is the sum of its last output.
class OneLayer : public Model {
 public:
  explicit OneLayer(std::shared_ptr<nn::Recurrent> r) : r_(std::move(r)) {}
  nn::Module& module() override { return *r_; }
  Variable forward(const Batch& b) override { return (*r_)(Variable(b.x)); }
  std::string summary(const Batch&) override { return ""; }

 private:
  std::shared_ptr<nn::Recurrent> r_;
};

Variable last_step_sum(const Variable& out) { return sum(narrow(out, 0, out.size(0) - 1, 1)); }

TEST(GradientFlow, TheLastStepsGradientIsTheLossesAndEarlierOnesShrinkThroughATanhRnn) {
  manual_seed(1);
  auto rnn = nn::make_recurrent("rnn_tanh", nn::RecurrentOptions(3, 8).impl(nn::Impl::Generic));
  const Variable x(randn({30, 4, 3}, kFloat64));
  rnn->to(kFloat64);
  nn::GradientFlow flow;
  last_step_sum(rnn->forward(x)).backward();
  const auto traces = flow.traces();
  ASSERT_EQ(traces.size(), 1u);
  EXPECT_EQ(traces[0].path, "generic");
  const auto n = traces[0].norms();
  ASSERT_EQ(n.size(), 30u);
  EXPECT_NEAR(n[29], std::sqrt(4.0 * 8.0), 1e-12);  // dL/dh_T is all ones
  EXPECT_LT(n[0], n[29] * 1e-2) << "PyTorch's uniform init of a tanh RNN contracts: the gradient vanishes going back";
  for (std::size_t t = 1; t < n.size(); ++t) EXPECT_GT(n[t], 0.0);
}

// A fused kernel reports dL/dh_t from its backward pass (KILN_KERNEL_REPORTS_DH): the hand-written
// kernels' SDK skeleton and compiled cells alike give the generic graph's norms, for stacked,
// bidirectional layers with per-sequence lengths.
std::vector<nn::FlowTrace> flow_of(nn::Recurrent& layer, nn::Impl impl, const Variable& x, const Variable& lengths) {
  layer.set_impl(impl);
  nn::GradientFlow flow;
  const auto out = layer.forward(x, {}, lengths);
  sum(mul(out.output, out.output)).backward();
  return flow.traces();
}

TEST(GradientFlow, FusedKernelsReportTheGenericGraphsFlow) {
  manual_seed(9);
  const Variable x(randn({12, 5, 3}, kFloat64));
  const Variable lengths(from_data(std::vector<std::int64_t>{12, 3, 7, 0, 12}, {5}));
  for (const auto& [cell, impl] : {std::pair<std::string, nn::Impl>{"lstm", nn::Impl::Fused}, {"gru", nn::Impl::Fused},
                                   {"lstm_cifg", nn::Impl::Compiled}, {"peephole_lstm", nn::Impl::Compiled}}) {
    auto layer = nn::make_recurrent(cell, nn::RecurrentOptions(3, 6).num_layers(2).bidirectional(true));
    layer->to(kFloat64);
    const auto fused = flow_of(*layer, impl, x, lengths), generic = flow_of(*layer, nn::Impl::Generic, x, lengths);
    ASSERT_EQ(fused.size(), 4u) << cell;  // two layers, two directions
    ASSERT_EQ(generic.size(), 4u) << cell;
    for (std::size_t k = 0; k < 4; ++k) {
      EXPECT_EQ(fused[k].path.rfind("fused: ", 0), 0u) << cell << ": " << fused[k].path;
      EXPECT_EQ(generic[k].path, "generic");
      EXPECT_EQ(fused[k].reverse, k % 2 == 1);
      const auto a = fused[k].norms(), b = generic[k].norms();
      ASSERT_EQ(a.size(), 12u);
      for (std::size_t t = 0; t < a.size(); ++t) EXPECT_NEAR(a[t], b[t], 1e-9 * (1 + b[t])) << cell << " trace " << k << " step " << t;
    }
  }
}

TEST(Linalg, SingularValuesAndSpectralRadiusByLapack) {
  const Tensor d = from_data(std::vector<double>{3, 0, 0, 0, -5, 0, 0, 0, 0.5}, {3, 3});
  const auto s = linalg::svdvals(d);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_NEAR(s[0], 5, 1e-12);
  EXPECT_NEAR(s[1], 3, 1e-12);
  EXPECT_NEAR(s[2], 0.5, 1e-12);
  EXPECT_NEAR(linalg::spectral_radius(d), 5, 1e-12);
  // A rotation scaled by 2: eigenvalues 2(cos a +- i sin a), so radius 2, though no entry is 2.
  const double a = 0.7;
  const Tensor r = from_data(std::vector<float>{float(2 * std::cos(a)), float(-2 * std::sin(a)), float(2 * std::sin(a)), float(2 * std::cos(a))}, {2, 2});
  EXPECT_NEAR(linalg::spectral_radius(r), 2, 1e-6);
  EXPECT_THROW(linalg::eigvals(from_data(std::vector<double>{1, 2}, {1, 2})), Error);
  EXPECT_THROW(linalg::svdvals(from_data(std::vector<double>{1, std::nan("")}, {1, 2})), Error);
}

// With no input, no biases and a zero state, a tanh RNN stays at h = 0, where tanh' = 1: every step's
// Jacobian dh_t/dh_{t-1} is W_hh itself.
TEST(Instruments, TheStepJacobianOfATanhRnnAtRestIsItsRecurrentWeight) {
  manual_seed(3);
  auto rnn = nn::make_recurrent("rnn_tanh", nn::RecurrentOptions(2, 5).bias(false));
  rnn->to(kFloat64);
  OneLayer model(rnn);
  Batch b;
  b.x = zeros({9, 3, 2}, kFloat64);
  InstrumentSpec spec;
  spec.jacobian_steps = 3;
  const InstrumentRecord r = record_instruments(model, b, last_step_sum, spec, 7);
  EXPECT_EQ(r.step, 7);
  ASSERT_EQ(r.layers.size(), 1u);
  const auto want = linalg::svdvals(rnn->parameter("weight_hh_l0").value());
  int jacobians = 0;
  for (const auto& s : r.layers[0].spectra) {
    if (s.step < 0) {
      EXPECT_EQ(s.name, "weight_hh");
      EXPECT_NEAR(s.radius, linalg::spectral_radius(rnn->parameter("weight_hh_l0").value()), 1e-12);
      continue;
    }
    ++jacobians;
    ASSERT_EQ(s.singular_values.size(), want.size()) << s.name;
    for (std::size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(s.singular_values[i], want[i], 1e-10) << s.name;
  }
  EXPECT_EQ(jacobians, 3);
  EXPECT_TRUE(rnn->parameter("weight_hh_l0").grad().defined() == false) << "a record leaves no gradient behind";
}

TEST(Instruments, GateSaturationCountsEachSigmoidAndTanhOfAStep) {
  manual_seed(4);
  auto lstm = nn::make_recurrent("lstm", nn::RecurrentOptions(2, 4));
  OneLayer model(lstm);
  Batch b;
  b.x = randn({6, 3, 2});
  InstrumentSpec spec;
  const auto calm = record_instruments(model, b, last_step_sum, spec, 0).layers.at(0).saturation;
  ASSERT_FALSE(calm.empty());
  int sigmoids = 0;
  for (const auto& s : calm) sigmoids += s.op.rfind("sigmoid", 0) == 0;
  EXPECT_GE(sigmoids, 1);
  // Weights 100 times larger drive every gate to 0 or 1 (and the block input to +-1).
  for (auto& [name, p] : lstm->named_parameters()) p.set_value(math::scale(p.value(), 100.0));
  const auto hot = record_instruments(model, b, last_step_sum, spec, 0).layers.at(0).saturation;
  ASSERT_EQ(hot.size(), calm.size());
  for (std::size_t i = 0; i < hot.size(); ++i) {
    if (hot[i].op.rfind("sigmoid", 0) != 0 && i > 0) continue;  // tanh(c) of saturated gates may sit anywhere
    EXPECT_GT(hot[i].fraction, 0.8) << hot[i].op;
    EXPECT_GT(hot[i].fraction, calm[i].fraction) << hot[i].op;
  }
}

TEST(ActivationProbe, SeesEverySigmoidAndTanhWhileAlive) {
  std::vector<std::string> seen;
  {
    ActivationProbe probe([&](const char* op, const Tensor&) { seen.emplace_back(op); });
    const Variable x(from_data({0.5f, -1.f}, {2}));
    tanh(sigmoid(x));
    relu(x);
  }
  tanh(Variable(from_data({1.f}, {1})));  // after the probe: not seen
  EXPECT_EQ(seen, (std::vector<std::string>{"sigmoid", "tanh"}));
}

TEST(Instruments, RecordsRoundTripThroughJsonAndACorruptLineIsRefused) {
  InstrumentRecord r;
  r.step = 40;
  r.layers.push_back({"model[0] LSTM l0", "generic", {0.5, 1e-30}, {{"weight_hh[gate 0]", -1, {2, 1}, 1.5}}, {{"sigmoid #1", 8, 0.25}}});
  const InstrumentRecord back = from_json_line(to_json_line(r));
  EXPECT_EQ(back.step, 40);
  ASSERT_EQ(back.layers.size(), 1u);
  EXPECT_EQ(back.layers[0].grad_norms, r.layers[0].grad_norms);
  EXPECT_EQ(back.layers[0].spectra[0].singular_values, (std::vector<double>{2, 1}));
  EXPECT_EQ(back.layers[0].saturation[0].fraction, 0.25);
  EXPECT_THROW(from_json_line("{\"step\": 1}"), Error);
  EXPECT_THROW(from_json_line("not json"), Error);
}

// Instruments read the model on the evaluation batch with the generators put back: a run trains to the
// same bits with them every step as without them.
TEST(Instruments, LeaveTrainingBitIdentical) {
  const auto dir = std::filesystem::temp_directory_path() / "kiln_instruments_test";
  std::filesystem::remove_all(dir);
  const std::string text = R"(seed: 5
data: {task: adding, length: 12, batch: 4}
model:
  - recurrent: {cell: lstm, hidden: 6, dropout: 0.0}
  - dropout: {p: 0.3}
  - linear: {out: auto}
train: {steps: 12, eval_every: 6, checkpoint_every: 6}
)";
  TrainOptions quiet;
  quiet.quiet = true;
  const auto on = train(parse_experiment(text, "a.yaml", {"output=" + (dir / "on").string(), "instruments.every=1"}), quiet);
  const auto off = train(parse_experiment(text, "a.yaml", {"output=" + (dir / "off").string(), "instruments.every=0"}), quiet);
  const auto a = io::load_safetensors((dir / "on/model.safetensors").string()).tensors;
  const auto b = io::load_safetensors((dir / "off/model.safetensors").string()).tensors;
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) EXPECT_EQ(t.to_vector(), b.at(name).to_vector()) << name;
  EXPECT_EQ(on.eval_loss, off.eval_loss);
  const std::string lines = io::read_file((dir / "on/instruments.jsonl").string());
  EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), 13) << "step 0 and each of the 12";
  EXPECT_TRUE(io::read_file((dir / "off/instruments.jsonl").string()).empty());
  EXPECT_TRUE(std::filesystem::exists(dir / "on/report.html"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kiln::experiment

namespace kiln::experiment {
namespace {

// Note [Torn last line]: a run killed while writing leaves a half-written last line in instruments.jsonl
// or metrics.jsonl; the report leaves that line out (the rest is drawn), while a broken line anywhere else
// is refused, naming the file and line.
TEST(Instruments, AReportLeavesOutATornLastLineAndRefusesACorruptOne) {
  const auto dir = std::filesystem::temp_directory_path() / "kiln_torn_line_test";
  std::filesystem::remove_all(dir);
  const std::string text = R"(seed: 5
data: {task: adding, length: 8, batch: 4}
model:
  - recurrent: {cell: lstm, hidden: 4}
  - linear: {out: auto}
train: {steps: 4, eval_every: 2, checkpoint_every: 2}
instruments: {every: 1}
)";
  TrainOptions quiet;
  quiet.quiet = true;
  train(parse_experiment(text, "a.yaml", {"output=" + dir.string()}), quiet);
  const std::string instruments = io::read_file((dir / "instruments.jsonl").string());
  const std::string metrics = io::read_file((dir / "metrics.jsonl").string());
  // Killed mid-line: a last line cut short, without its newline.
  io::write_file_atomic((dir / "instruments.jsonl").string(), instruments + instruments.substr(0, instruments.find('\n') / 2));
  io::write_file_atomic((dir / "metrics.jsonl").string(), metrics + "{\"step\": 5, \"spl");
  EXPECT_NO_THROW(write_run_report(dir.string()));
  EXPECT_NE(io::read_file((dir / "report.html").string()).find("<svg"), std::string::npos);
  // The same half line followed by more lines is a corrupt file: refused, naming where.
  io::write_file_atomic((dir / "instruments.jsonl").string(), instruments.substr(0, instruments.find('\n') / 2) + "\n" + instruments);
  try {
    write_run_report(dir.string());
    FAIL() << "a corrupt line was read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("instruments.jsonl:1:"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kiln::experiment

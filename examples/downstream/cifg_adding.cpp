// A downstream program against the installed Kiln: the CIFG cell from this project's plugin trains on the
// adding problem (Hochreiter & Schmidhuber, 1997) behind the user's Highway layer, after gradient checks of
// the cell and the layer; a user's own copy of the cell, which claims no kernel, is found by the graph pass.
//
//   build-cifg/cifg_adding [--steps 300] [--seq-len 20]

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <kiln/kiln.hpp>

#include "highway.hpp"

namespace nn = kiln::nn;
using kiln::Variable;

// The same math as the plugin's CIFGCell, written again by a user who never heard of its kernel.
class MyCIFGCell : public nn::RecurrentCell {
 public:
  MyCIFGCell(std::int64_t in, std::int64_t hidden) : RecurrentCell("MyCIFGCell", in, hidden) { reset(); }
  void reset() override { register_gate_parameters(3, true); }
  std::size_t state_size() const override { return 2; }
  nn::State step(const Variable& x, const nn::State& s) override {
    const auto g = kiln::chunk(kiln::linear(x, weight_ih_, bias_ih_) + kiln::linear(s[0], weight_hh_, bias_hh_), 3, 1);
    const Variable i = kiln::sigmoid(g[0]);
    const Variable c = (1.0 - i) * s[1] + i * kiln::tanh(g[1]);
    return {kiln::sigmoid(g[2]) * kiln::tanh(c), c};
  }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
};

// A batch of the adding problem: x [T, B, 2] (a value and a marker), y [B, 1] the sum of the two marked values.
std::pair<Variable, Variable> adding_batch(std::int64_t steps, std::int64_t batch, kiln::Generator& gen) {
  kiln::Tensor x = kiln::zeros({steps, batch, 2});
  std::vector<float> y(static_cast<std::size_t>(batch));
  const kiln::Tensor values = kiln::uniform({steps, batch}, 0, 1, kiln::kFloat32, &gen);
  for (std::int64_t b = 0; b < batch; ++b) {
    const std::int64_t first = static_cast<std::int64_t>(gen.next_u64() % static_cast<std::uint64_t>(steps / 2));
    const std::int64_t second = steps / 2 + static_cast<std::int64_t>(gen.next_u64() % static_cast<std::uint64_t>(steps - steps / 2));
    for (std::int64_t t = 0; t < steps; ++t) {
      x.data<float>()[(t * batch + b) * 2] = values.data<float>()[t * batch + b];
      if (t == first || t == second) {
        x.data<float>()[(t * batch + b) * 2 + 1] = 1;
        y[static_cast<std::size_t>(b)] += values.data<float>()[t * batch + b];
      }
    }
  }
  return {Variable(x), Variable(kiln::from_data(y, {batch, 1}))};
}

int main(int argc, char** argv) {
  int steps = 300, seq_len = 20;
  for (int a = 1; a + 1 < argc; a += 2) {
    if (std::strcmp(argv[a], "--steps") == 0) steps = std::atoi(argv[a + 1]);
    if (std::strcmp(argv[a], "--seq-len") == 0) seq_len = std::atoi(argv[a + 1]);
  }
  try {
    kiln::plugins::load_plugin(CIFG_PLUGIN);  // registers the cell "cifg" and its kernel
    auto& cells = nn::CellRegistry::global();
    std::printf("cell 'cifg' registered by %s: %s\n", cells.at("cifg").origin.c_str(), cells.at("cifg").description.c_str());

    // 1. Trust the cell and the layer: finite differences in float64.
    kiln::manual_seed(0);
    auto probe = nn::make_recurrent("cifg", nn::RecurrentOptions(3, 4).num_layers(2).bidirectional(true).impl(nn::Impl::Generic));
    probe->to(kiln::kFloat64);
    const Variable px(kiln::randn({4, 2, 3}, kiln::kFloat64), true);
    const auto cell_check = nn::gradcheck_module(*probe, {px}, [&](const std::vector<Variable>& in) { return probe->forward(in[0], {}).output; });
    std::printf("gradcheck CIFG layer: %s\n", cell_check.message.c_str());
    Highway probe_highway(5);
    probe_highway.to(kiln::kFloat64);
    const Variable hx(kiln::randn({3, 5}, kiln::kFloat64), true);
    const auto layer_check = nn::gradcheck_module(probe_highway, {hx}, [&](const std::vector<Variable>& in) { return probe_highway.forward(in[0]); });
    std::printf("gradcheck Highway: %s\n", layer_check.message.c_str());

    // 2. The user's copy of the cell: the graph pass finds the plugin's kernel for it.
    nn::Recurrent copy("MyCIFG", nn::RecurrentOptions(2, 8), [](std::int64_t in, std::int64_t h, const nn::RecurrentOptions&) {
      return std::make_shared<MyCIFGCell>(in, h);
    });
    std::printf("%s\n", copy.kernel_report().c_str());

    // 3. Train: CIFG -> Highway -> Linear on the adding problem.
    kiln::manual_seed(1);
    auto rnn = nn::make_recurrent("cifg", nn::RecurrentOptions(2, 32).return_sequences(false));
    std::string why;
    std::printf("the CIFG layer runs on %s\n", rnn->uses_fused(&why) ? rnn->kernel_report().c_str() : ("the generic graph: " + why).c_str());
    nn::Sequential model({rnn, std::make_shared<Highway>(32), std::make_shared<nn::Linear>(32, 1)});
    const auto [test_x, test_y] = [&] {
      kiln::Generator gen(99);
      return adding_batch(seq_len, 500, gen);
    }();
    std::printf("%s\n", nn::summary(model, test_x).c_str());
    kiln::optim::Adam adam(model.parameters(), kiln::optim::AdamOptions(3e-3));
    kiln::Generator gen(7);
    double test_mse = 0;
    for (int step = 1; step <= steps; ++step) {
      const auto [x, y] = adding_batch(seq_len, 64, gen);
      const Variable loss = kiln::mse_loss(model.forward(x), y);
      adam.zero_grad();
      loss.backward();
      adam.step();
      if (step % 100 == 0 || step == steps) {
        kiln::NoGradGuard no_grad;
        test_mse = kiln::mse_loss(model.forward(test_x), test_y).item();
        std::printf("step %4d  train MSE %.4f  test MSE %.4f\n", step, loss.item(), test_mse);
      }
    }
    const bool ok = cell_check.ok && layer_check.ok && copy.uses_fused() && rnn->uses_fused() && test_mse < 0.1667;
    std::printf("%s: test MSE %.4f (always answering 1 scores 0.1667)\n", ok ? "OK" : "FAILED", test_mse);
    return ok ? 0 : 1;
  } catch (const kiln::Error& e) {
    std::fprintf(stderr, "cifg_adding: %s\n", e.what());
    return 1;
  }
}

#include "layers/research_cells.hpp"

#include <cmath>

#include "layers/init.hpp"
#include "ops/ops.hpp"

namespace kiln::nn {

LayerNormLSTMCell::LayerNormLSTMCell(std::int64_t input_size, std::int64_t hidden_size, double eps)
    : RecurrentCell("LayerNormLSTMCell", input_size, hidden_size), eps_(eps) {
  reset();
}

void LayerNormLSTMCell::reset() {
  const std::int64_t H = hidden_size();
  register_gate_parameters(4, /*bias=*/true, /*single_bias=*/true);  // LN makes a second bias redundant
  ln_ih_w_ = register_parameter("ln_ih_weight", init::ones({4 * H}));
  ln_ih_b_ = register_parameter("ln_ih_bias", init::zeros({4 * H}));
  ln_hh_w_ = register_parameter("ln_hh_weight", init::ones({4 * H}));
  ln_hh_b_ = register_parameter("ln_hh_bias", init::zeros({4 * H}));
  ln_c_w_ = register_parameter("ln_c_weight", init::ones({H}));
  ln_c_b_ = register_parameter("ln_c_bias", init::zeros({H}));
}

State LayerNormLSTMCell::step(const Variable& x, const State& state) {
  check_step(x, state);
  const Shape gates{4 * hidden_size()}, hidden{hidden_size()};
  const Variable pre = layer_norm(linear(x, weight_ih_), gates, ln_ih_w_, ln_ih_b_, eps_) +
                       layer_norm(linear(state[0], weight_hh_), gates, ln_hh_w_, ln_hh_b_, eps_) + bias_ih_;
  const std::vector<Variable> g = chunk(pre, 4, 1);
  const Variable c = sigmoid(g[1]) * state[1] + sigmoid(g[0]) * tanh(g[2]);
  const Variable h = sigmoid(g[3]) * tanh(layer_norm(c, hidden, ln_c_w_, ln_c_b_, eps_));
  return {h, c};
}

PeepholeLSTMCell::PeepholeLSTMCell(std::int64_t input_size, std::int64_t hidden_size, bool bias)
    : RecurrentCell("PeepholeLSTMCell", input_size, hidden_size), bias_(bias) {
  reset();
}

void PeepholeLSTMCell::reset() {
  register_gate_parameters(4, bias_);
  const double k = 1.0 / std::sqrt(static_cast<double>(hidden_size()));
  peephole_ = register_parameter("weight_peephole", init::uniform({3, hidden_size()}, -k, k));
}

State PeepholeLSTMCell::step(const Variable& x, const State& state) {
  check_step(x, state);
  const Variable& c = state[1];
  const std::vector<Variable> g = chunk(linear(x, weight_ih_, bias_ih_) + linear(state[0], weight_hh_, bias_hh_), 4, 1);
  const std::vector<Variable> p = chunk(peephole_, 3, 0);  // each [1, H], broadcast over the batch
  const Variable i = sigmoid(g[0] + p[0] * c);
  const Variable f = sigmoid(g[1] + p[1] * c);
  const Variable c_next = f * c + i * tanh(g[2]);
  const Variable o = sigmoid(g[3] + p[2] * c_next);
  return {o * tanh(c_next), c_next};
}

MGUCell::MGUCell(std::int64_t input_size, std::int64_t hidden_size, bool bias)
    : RecurrentCell("MGUCell", input_size, hidden_size), bias_(bias) {
  reset();
}

State MGUCell::step(const Variable& x, const State& state) {
  check_step(x, state);
  const Variable& h = state[0];
  const std::int64_t H = hidden_size();
  auto rows = [](const Variable& p, std::int64_t start, std::int64_t n) { return p.defined() ? narrow(p, 0, start, n) : p; };
  const std::vector<Variable> gi = chunk(linear(x, weight_ih_, bias_ih_), 2, 1);
  const Variable f = sigmoid(gi[0] + linear(h, rows(weight_hh_, 0, H), rows(bias_hh_, 0, H)));
  const Variable n = tanh(gi[1] + linear(f * h, rows(weight_hh_, H, H), rows(bias_hh_, H, H)));
  return {(1.0 - f) * h + f * n};
}

}  // namespace kiln::nn

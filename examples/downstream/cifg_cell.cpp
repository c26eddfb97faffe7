#include "cifg_cell.hpp"

CIFGCell::CIFGCell(std::int64_t input_size, std::int64_t hidden_size, bool bias)
    : RecurrentCell("CIFGCell", input_size, hidden_size), bias_(bias) {
  reset();
}

kiln::nn::State CIFGCell::step(const kiln::Variable& x, const kiln::nn::State& state) {
  check_step(x, state);
  const auto g = kiln::chunk(kiln::linear(x, weight_ih_, bias_ih_) + kiln::linear(state[0], weight_hh_, bias_hh_), 3, 1);
  const kiln::Variable i = kiln::sigmoid(g[0]);
  const kiln::Variable c = (1.0 - i) * state[1] + i * kiln::tanh(g[1]);
  return {kiln::sigmoid(g[2]) * kiln::tanh(c), c};
}

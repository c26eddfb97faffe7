#include "layers/rnn_cell.hpp"

#include <cmath>
#include <cstdlib>
#include <memory>
#include <typeinfo>

#include <cxxabi.h>

#include "layers/init.hpp"
#include "ops/ops.hpp"

namespace kiln::nn {

std::string RecurrentCell::class_name() const {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(abi::__cxa_demangle(typeid(*this).name(), nullptr, nullptr, &status), std::free);
  std::string s = status == 0 && name ? name.get() : type_name();
  const std::string noise = "(anonymous namespace)::";
  for (std::size_t at; (at = s.find(noise)) != std::string::npos;) s.erase(at, noise.size());
  return s;
}

RecurrentCell::RecurrentCell(std::string type_name, std::int64_t input_size, std::int64_t hidden_size)
    : Module(std::move(type_name)), input_size_(input_size), hidden_size_(hidden_size) {
  KILN_CHECK(input_size > 0 && hidden_size > 0, "{}: input_size and hidden_size must be positive, got {} and {}",
             this->type_name(), input_size, hidden_size);
}

void RecurrentCell::register_gate_parameters(std::int64_t gates, bool bias, bool single_bias) {
  const double k = 1.0 / std::sqrt(static_cast<double>(hidden_size_));
  weight_ih_ = register_parameter("weight_ih", init::uniform({gates * hidden_size_, input_size_}, -k, k));
  weight_hh_ = register_parameter("weight_hh", init::uniform({gates * hidden_size_, hidden_size_}, -k, k));
  if (bias && single_bias) {
    bias_ih_ = register_parameter("bias", init::uniform({gates * hidden_size_}, -k, k));
  } else if (bias) {
    bias_ih_ = register_parameter("bias_ih", init::uniform({gates * hidden_size_}, -k, k));
    bias_hh_ = register_parameter("bias_hh", init::uniform({gates * hidden_size_}, -k, k));
  }
}

void RecurrentCell::check_step(const Variable& x, const State& state) const {
  KILN_CHECK(x.defined() && x.dim() == 2 && x.size(1) == input_size_,
             "{}(input_size={}): step input must be [batch, {}], got {}", type_name(), input_size_, input_size_,
             x.defined() ? x.shape() : Shape{});
  KILN_CHECK(state.size() == state_size(), "{}: expected a state of {} tensor(s), got {}", type_name(), state_size(),
             state.size());
  for (std::size_t i = 0; i < state.size(); ++i)
    KILN_CHECK(state[i].defined() && state[i].shape() == (Shape{x.size(0), hidden_size_}),
               "{}(hidden_size={}): state {} must be [{}, {}], got {}", type_name(), hidden_size_, i, x.size(0),
               hidden_size_, state[i].defined() ? state[i].shape() : Shape{});
}

std::string RecurrentCell::trusted_kernel() const {
  const KernelClaim c = kernel_claim();
  return c && c.claimed_by == std::type_index(typeid(*this)) ? c.kernel : std::string();
}

State RecurrentCell::zero_state(std::int64_t batch, DType dtype) const {
  State s;
  for (std::size_t i = 0; i < state_size(); ++i) s.emplace_back(zeros({batch, hidden_size_}, dtype));
  return s;
}

Variable RecurrentCell::forward(const Variable& x) {
  KILN_CHECK(x.defined() && x.dim() == 2, "{}: forward(x) takes x [batch, input_size], got {}", type_name(),
             x.defined() ? x.shape() : Shape{});
  return output(step(x, zero_state(x.size(0), x.dtype())));
}

std::string RecurrentCell::extra_repr() const {
  return fmt::format("input_size={}, hidden_size={}, bias={}", input_size_, hidden_size_, bias_ih_.defined());
}

RNNCell::RNNCell(RNNCellOptions o) : RecurrentCell("RNNCell", o.input_size_, o.hidden_size_), options_(o) { reset(); }

State RNNCell::step(const Variable& x, const State& state) {
  check_step(x, state);
  const Variable pre = linear(x, weight_ih_, bias_ih_) + linear(state[0], weight_hh_, bias_hh_);
  return {options_.nonlinearity_ == Nonlinearity::Tanh ? tanh(pre) : relu(pre)};
}

LSTMCell::LSTMCell(LSTMCellOptions o) : RecurrentCell("LSTMCell", o.input_size_, o.hidden_size_), options_(o) { reset(); }

State LSTMCell::step(const Variable& x, const State& state) {
  check_step(x, state);
  const Variable& h = state[0];
  const Variable& c = state[1];
  const std::vector<Variable> g = chunk(linear(x, weight_ih_, bias_ih_) + linear(h, weight_hh_, bias_hh_), 4, 1);
  const Variable c_next = sigmoid(g[1]) * c + sigmoid(g[0]) * tanh(g[2]);
  const Variable h_next = sigmoid(g[3]) * tanh(c_next);
  return {h_next, c_next};
}

GRUCell::GRUCell(GRUCellOptions o) : RecurrentCell("GRUCell", o.input_size_, o.hidden_size_), options_(o) { reset(); }

State GRUCell::step(const Variable& x, const State& state) {
  check_step(x, state);
  const Variable& h = state[0];
  const std::int64_t H = hidden_size();
  const std::vector<Variable> gi = chunk(linear(x, weight_ih_, bias_ih_), 3, 1);
  Variable r, z, n;
  if (options_.reset_after_) {
    const std::vector<Variable> gh = chunk(linear(h, weight_hh_, bias_hh_), 3, 1);
    r = sigmoid(gi[0] + gh[0]);
    z = sigmoid(gi[1] + gh[1]);
    n = tanh(gi[2] + r * gh[2]);
  } else {
    // The recurrent weights split: [W_hr; W_hz] act on h, W_hn acts on r * h.
    const Variable b_rz = bias_hh_.defined() ? narrow(bias_hh_, 0, 0, 2 * H) : Variable();
    const Variable b_n = bias_hh_.defined() ? narrow(bias_hh_, 0, 2 * H, H) : Variable();
    const std::vector<Variable> gh = chunk(linear(h, narrow(weight_hh_, 0, 0, 2 * H), b_rz), 2, 1);
    r = sigmoid(gi[0] + gh[0]);
    z = sigmoid(gi[1] + gh[1]);
    n = tanh(gi[2] + linear(r * h, narrow(weight_hh_, 0, 2 * H, H), b_n));
  }
  return {(1.0 - z) * n + z * h};
}

std::string GRUCell::extra_repr() const {
  return RecurrentCell::extra_repr() + (options_.reset_after_ ? "" : ", reset_after=false");
}

}  // namespace kiln::nn

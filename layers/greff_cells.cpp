#include "layers/greff_cells.hpp"

#include <cmath>

#include <fmt/format.h>

#include "layers/init.hpp"
#include "ops/ops.hpp"

namespace kiln::nn {

const std::vector<GreffVariantInfo>& greff_variants() {
  static const std::vector<GreffVariantInfo> v{
      {"lstm_nig", GreffVariant::NIG, "Greff et al.'s LSTM without input gate: i = 1"},
      {"lstm_nfg", GreffVariant::NFG, "Greff et al.'s LSTM without forget gate: f = 1"},
      {"lstm_nog", GreffVariant::NOG, "Greff et al.'s LSTM without output gate: o = 1"},
      {"lstm_niaf", GreffVariant::NIAF, "Greff et al.'s LSTM without input activation: z = a_z"},
      {"lstm_noaf", GreffVariant::NOAF, "Greff et al.'s LSTM without output activation: h' = o c'"},
      {"lstm_cifg", GreffVariant::CIFG, "Greff et al.'s LSTM with coupled input and forget gate: f = 1 - i"},
      {"lstm_np", GreffVariant::NP, "Greff et al.'s LSTM without peepholes"},
      {"lstm_fgr", GreffVariant::FGR, "Greff et al.'s LSTM with full gate recurrence: i, f, o also see the previous i, f, o"},
  };
  return v;
}

namespace {

bool has_i(GreffVariant v) { return v != GreffVariant::NIG; }
bool has_f(GreffVariant v) { return v != GreffVariant::NFG && v != GreffVariant::CIFG; }
bool has_o(GreffVariant v) { return v != GreffVariant::NOG; }
bool peepholes(GreffVariant v) { return v != GreffVariant::NP; }

}  // namespace

GreffLSTMCell::GreffLSTMCell(GreffVariant variant, std::int64_t input_size, std::int64_t hidden_size, bool bias)
    : RecurrentCell("GreffLSTMCell", input_size, hidden_size), variant_(variant), bias_(bias) {
  reset();
}

std::vector<std::string> GreffLSTMCell::gate_names() const {
  std::vector<std::string> g;
  if (has_i(variant_)) g.push_back("i");
  if (has_f(variant_)) g.push_back("f");
  g.push_back("z");
  if (has_o(variant_)) g.push_back("o");
  return g;
}

void GreffLSTMCell::reset() {
  register_gate_parameters(static_cast<std::int64_t>(gate_names().size()), bias_);
  const std::int64_t H = hidden_size();
  const double k = 1.0 / std::sqrt(static_cast<double>(H));
  const std::int64_t rows = has_i(variant_) + has_f(variant_) + has_o(variant_);
  if (peepholes(variant_)) peephole_ = register_parameter("weight_peephole", init::uniform({rows, H}, -k, k));
  if (variant_ == GreffVariant::FGR) gate_recurrence_ = register_parameter("weight_gate_recurrence", init::uniform({3 * H, 3 * H}, -k, k));
}

State GreffLSTMCell::step(const Variable& x, const State& state) {
  check_step(x, state);
  const Variable& c = state[1];
  const std::vector<std::string> names = gate_names();
  const std::vector<Variable> a = chunk(linear(x, weight_ih_, bias_ih_) + linear(state[0], weight_hh_, bias_hh_),
                                        static_cast<std::int64_t>(names.size()), 1);
  auto pre = [&](const char* gate) {
    for (std::size_t k = 0; k < names.size(); ++k)
      if (names[k] == gate) return a[k];
    return Variable();
  };
  std::vector<Variable> rec;  // FGR: R_g [i f o]_{t-1}, split per gate
  if (variant_ == GreffVariant::FGR) rec = chunk(linear(concat({state[2], state[3], state[4]}, 1), gate_recurrence_), 3, 1);
  std::vector<Variable> p;
  if (peephole_.defined()) p = chunk(peephole_, peephole_.size(0), 0);  // each [1, H]
  std::size_t next_peephole = 0;
  // A sigmoid gate: its pre-activation, the gate recurrence's part, the peephole on `cell`.
  auto gate = [&](const char* name, std::size_t rec_index, const Variable& cell) {
    Variable v = pre(name);
    if (!rec.empty()) v = v + rec[rec_index];
    if (!p.empty()) v = v + p[next_peephole++] * cell;
    return sigmoid(v);
  };
  const Variable i = has_i(variant_) ? gate("i", 0, c) : Variable();
  const Variable f = has_f(variant_) ? gate("f", 1, c) : variant_ == GreffVariant::CIFG ? 1.0 - i : Variable();
  const Variable z = variant_ == GreffVariant::NIAF ? pre("z") : tanh(pre("z"));
  const Variable kept = f.defined() ? f * c : c;
  const Variable c_next = kept + (i.defined() ? i * z : z);
  const Variable o = has_o(variant_) ? gate("o", 2, c_next) : Variable();
  const Variable y = variant_ == GreffVariant::NOAF ? c_next : tanh(c_next);
  const Variable h_next = o.defined() ? o * y : y;
  if (variant_ != GreffVariant::FGR) return {h_next, c_next};
  return {h_next, c_next, i, f, o};  // FGR keeps every gate
}

std::string GreffLSTMCell::extra_repr() const {
  for (const auto& v : greff_variants())
    if (v.variant == variant_) return fmt::format("{}, {}, variant={}", input_size(), hidden_size(), v.name);
  return fmt::format("{}, {}", input_size(), hidden_size());
}

}  // namespace kiln::nn

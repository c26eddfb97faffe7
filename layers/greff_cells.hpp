#pragma once
// The LSTM variants of Greff et al., "LSTM: A Search Space Odyssey" (2015), each a registered cell
// written in generic ops, to compare with the vanilla LSTM of the paper (the peephole LSTM,
// "peephole_lstm"). Their vanilla step, with block input z and peepholes p:
//   i = s(a_i + p_i c), f = s(a_f + p_f c), z = tanh(a_z), c' = f c + i z,
//   o = s(a_o + p_o c'), h' = o tanh(c')
// where a = W x + b_ih + R h + b_hh. The variants change one thing each:
//   lstm_nig   no input gate:           i = 1
//   lstm_nfg   no forget gate:          f = 1
//   lstm_nog   no output gate:          o = 1
//   lstm_niaf  no input activation:     z = a_z
//   lstm_noaf  no output activation:    h' = o c'
//   lstm_cifg  coupled input and forget gate: f = 1 - i
//   lstm_np    no peepholes
//   lstm_fgr   full gate recurrence: a_i, a_f, a_o also get R_g [i f o]_{t-1} (nine more H x H matrices,
//              weight_gate_recurrence [3H, 3H]); the state carries the previous gates (h, c, i, f, o)
// A gate a variant drops has no rows in weight_ih/weight_hh/biases (gate order i, f, z, o of those it
// keeps) nor a peephole row, so each variant has only the parameters it uses.
//
//   auto layer = kiln::nn::make_recurrent("lstm_cifg", kiln::nn::RecurrentOptions(32, 64));

#include <string>
#include <vector>

#include "layers/rnn_cell.hpp"

namespace kiln::nn {

enum class GreffVariant { Vanilla, NIG, NFG, NOG, NIAF, NOAF, CIFG, NP, FGR };

/// (registry name, variant, one line) for each of the eight variants.
struct GreffVariantInfo {
  const char* name;
  GreffVariant variant;
  const char* description;
};
const std::vector<GreffVariantInfo>& greff_variants();

class GreffLSTMCell : public RecurrentCell {
 public:
  GreffLSTMCell(GreffVariant variant, std::int64_t input_size, std::int64_t hidden_size, bool bias = true);
  void reset() override;
  State step(const Variable& x, const State& state) override;
  std::size_t state_size() const override { return variant_ == GreffVariant::FGR ? 5 : 2; }
  std::shared_ptr<Module> clone() const override { return clone_as(*this); }
  std::string extra_repr() const override;
  GreffVariant variant() const { return variant_; }
  /// The gates this variant keeps, in order ("i", "f", "z", "o").
  std::vector<std::string> gate_names() const override;

 private:
  GreffVariant variant_;
  bool bias_;
  Variable peephole_, gate_recurrence_;
};

}  // namespace kiln::nn

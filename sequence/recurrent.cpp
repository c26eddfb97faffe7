#include "sequence/recurrent.hpp"

#include <algorithm>
#include <typeinfo>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "ops/ops.hpp"
#include "fusion/fused_recurrent.hpp"
#include "layers/gradient_flow.hpp"
#include "layers/cell_registry.hpp"
#include "fusion/kernel_choice.hpp"
#include "fusion/spot_check.hpp"
#include "plugins/registry.hpp"
#include "tensor/warning.hpp"

namespace kiln::nn {
namespace {

// RecurrentOptions::forget_bias: the rows of the gate named "f" set to b in bias_ih (or the single bias)
// and to 0 in bias_hh.
void set_forget_bias(RecurrentCell& cell, double b, const std::string& layer, std::int64_t l) {
  const std::vector<std::string> gates = cell.gate_names();
  const auto f = std::find(gates.begin(), gates.end(), "f");
  KILN_CHECK(f != gates.end(), "{} layer {}: forget_bias needs a forget gate, and {} has {}", layer, l, cell.class_name(),
             gates.empty() ? std::string("no named gates (RecurrentCell::gate_names)") : fmt::format("gates {}", fmt::join(gates, ", ")));
  const std::int64_t H = cell.hidden_size(), G = static_cast<std::int64_t>(gates.size()), k = f - gates.begin();
  bool set = false;
  for (auto& [name, p] : cell.named_parameters(false)) {
    const bool first = name == "bias_ih" || name == "bias", second = name == "bias_hh";
    if (!first && !second) continue;
    KILN_CHECK(p.shape() == (Shape{G * H}), "{} layer {}: forget_bias: {}'s {} is {}, not {} gates of {}", layer, l, cell.class_name(),
               name, p.shape(), G, H);
    std::vector<double> v = p.value().to_vector();
    std::fill(v.begin() + k * H, v.begin() + (k + 1) * H, first ? b : 0.0);
    p.set_value(from_data(v, p.shape()).to(p.dtype()));
    set = set || first;
  }
  KILN_CHECK(set, "{} layer {}: forget_bias needs a bias, and {} has none (bias=false)", layer, l, cell.class_name());
}

}  // namespace

Recurrent::Recurrent(std::string type_name, RecurrentOptions options, CellFactory make_cell)
    : Module(std::move(type_name)), options_(options), make_cell_(std::move(make_cell)) {
  KILN_CHECK(options_.input_size_ > 0 && options_.hidden_size_ > 0 && options_.num_layers_ > 0,
             "{}: input_size, hidden_size and num_layers must be positive, got {}, {}, {}", this->type_name(),
             options_.input_size_, options_.hidden_size_, options_.num_layers_);
  KILN_CHECK(options_.dropout_ >= 0 && options_.dropout_ <= 1, "{}: dropout must be in [0, 1], got {}",
             this->type_name(), options_.dropout_);
  KILN_CHECK(make_cell_ != nullptr, "{}: no cell factory", this->type_name());
  reset();
}

void Recurrent::reset() {
  choice_.reset();
  cells_.clear();
  const int dirs = options_.bidirectional_ ? 2 : 1;
  for (std::int64_t l = 0; l < options_.num_layers_; ++l) {
    const std::int64_t in = l == 0 ? options_.input_size_ : dirs * options_.hidden_size_;
    for (int d = 0; d < dirs; ++d) {
      auto cell = make_cell_(in, options_.hidden_size_, options_);
      KILN_CHECK(cell && cell->input_size() == in && cell->hidden_size() == options_.hidden_size_,
                 "{}: the cell factory returned a cell of the wrong size for layer {}", type_name(), l);
      // PyTorch's names: the cell's "weight_ih" is this layer's "weight_ih_l0" / "weight_ih_l0_reverse".
      const std::string suffix = fmt::format("_l{}{}", l, d == 1 ? "_reverse" : "");
      for (const auto& [name, p] : cell->named_parameters()) register_parameter(name + suffix, p);
      if (options_.forget_bias_) set_forget_bias(*cell, *options_.forget_bias_, type_name(), l);
      cells_.push_back(std::move(cell));
    }
  }
}

const std::shared_ptr<RecurrentCell>& Recurrent::cell(std::int64_t layer, int direction) const {
  const std::size_t i = static_cast<std::size_t>(layer * (options_.bidirectional_ ? 2 : 1) + direction);
  KILN_CHECK(layer >= 0 && layer < options_.num_layers_ && direction >= 0 && i < cells_.size(),
             "{}: no cell for layer {} direction {}", type_name(), layer, direction);
  return cells_[i];
}

const plugins::Kernel* Recurrent::choose_kernel(std::string* why) const {
  if (options_.impl_ == Impl::Generic) {
    if (why) *why = "impl is generic";
    return nullptr;
  }
  const auto& registry = plugins::Registry::global();
  if (!choice_ || choice_generation_ != registry.generation()) {
    // Cells like this layer's of any size, for compiling its step (Note [Kernel claims] 4).
    const plugins::CellMaker make = [factory = make_cell_, options = options_](std::int64_t in, std::int64_t hidden, bool bias) {
      RecurrentOptions o = options;
      o.bias_ = bias;
      return factory(in, hidden, o);
    };
    choice_ = std::make_shared<plugins::KernelChoice>(options_.impl_ == Impl::Compiled ? plugins::compiled_choice(*cells_.front(), make)
                                                                                       : plugins::choose_kernel(*cells_.front(), registry, make));
    choice_generation_ = registry.generation();
    for (std::size_t c = 1; c < cells_.size() && choice_->kernel != nullptr; ++c)
      if (typeid(*cells_[c]) != typeid(*cells_.front())) {
        choice_->kernel = nullptr;
        choice_->why_not = fmt::format("its cells are of different classes ({} and {})", cells_.front()->type_name(),
                                       cells_[c]->type_name());
      }
    if (choice_->kernel != nullptr && (choice_->how.rfind("graph pass", 0) == 0 || choice_->kernel->in_process))
      note_once(fmt::format("{}: {}", type_name(), choice_->how));
    if (choice_->claim_refused && choice_->kernel == nullptr && options_.impl_ == Impl::Auto)
      note_once(fmt::format("{}: {}; running the generic graph", type_name(), choice_->why_not));
  }
  if (why) *why = choice_->why_not;
  return choice_->kernel;
}

std::string Recurrent::kernel_report() const {
  std::string why;
  if (choose_kernel(&why) != nullptr) return choice_->how;
  return why;
}

RecurrentOutput Recurrent::forward(const Variable& input, const std::vector<Variable>& initial_state,
                                   const Variable& lengths) {
  const std::string& name = type_name();
  KILN_CHECK(input.defined() && (input.dim() == 3 || input.dim() == 2),
             "{}: input must be [T, B, I] ([B, T, I] with batch_first) or unbatched [T, I], got {}", name,
             input.defined() ? input.shape() : Shape{});
  const bool unbatched = input.dim() == 2;
  const Variable x = unbatched ? unsqueeze(input, options_.batch_first_ ? 0 : 1) : input;
  const int time_dim = options_.batch_first_ ? 1 : 0, batch_dim = 1 - time_dim;
  const std::int64_t steps = x.size(time_dim), batch = x.size(batch_dim), H = options_.hidden_size_;
  KILN_CHECK(x.size(2) == options_.input_size_, "{}(input_size={}): input of shape {} has feature size {}", name,
             options_.input_size_, input.shape(), x.size(2));
  const int dirs = options_.bidirectional_ ? 2 : 1;
  const std::int64_t L = options_.num_layers_;
  const std::size_t state_size = cells_.front()->state_size();
  std::string why;
  const plugins::Kernel* kernel = choose_kernel(&why);
  KILN_CHECK(kernel != nullptr || (options_.impl_ != Impl::Fused && options_.impl_ != Impl::Compiled), "{}: impl is {} but {}", name,
             options_.impl_ == Impl::Fused ? "fused" : "compiled", why);
  std::vector<std::int64_t> len;
  if (lengths.defined()) {
    KILN_CHECK(lengths.dtype() == kInt64 && lengths.shape() == (Shape{batch}),
               "{}: lengths must be int64 [{}] (one per sequence), got {} {}", name, batch, lengths.dtype(),
               lengths.shape());
    for (double v : lengths.value().to_vector()) len.push_back(static_cast<std::int64_t>(v));
    for (std::int64_t b = 0; b < batch; ++b)
      KILN_CHECK(len[static_cast<std::size_t>(b)] >= 0 && len[static_cast<std::size_t>(b)] <= steps,
                 "{}: lengths[{}] = {} is outside [0, {}] (the input has {} steps)", name, b,
                 len[static_cast<std::size_t>(b)], steps, steps);
  }
  const plugins::ParamMap* params = kernel != nullptr ? choice_->param_map() : nullptr;
  for (std::size_t c = 0; kernel != nullptr && c < cells_.size(); ++c) {
    if (plugins::kernel_supports(*kernel, *cells_[c], x.dtype(), steps, batch, len, c % dirs == 1, &why, params)) continue;
    KILN_CHECK(options_.impl_ != Impl::Fused && options_.impl_ != Impl::Compiled, "{}: impl is {} but {}", name,
               options_.impl_ == Impl::Fused ? "fused" : "compiled", why);
    warn_once(fmt::format("{}: {}; running the generic graph", name, why));
    kernel = nullptr;
  }
  // Note [Spot checks]: far beyond the sizes check-plugin proves, Auto checks the kernel there first, once.
  // Layer 0 and layer 1 (whose input is the hidden state below) are the two shapes a stack runs.
  for (std::size_t c = 0; kernel != nullptr && options_.impl_ == Impl::Auto && c < cells_.size() && c <= static_cast<std::size_t>(dirs);
       c += static_cast<std::size_t>(dirs)) {
    const std::string refused = plugins::spot_check(*kernel, *cells_[c], params, x.dtype(), steps, batch, dirs == 2, name);
    if (refused.empty()) continue;
    warn_once(fmt::format("{}: {}; running the generic graph", name, refused));
    kernel = nullptr;
  }
  // Note [Gradient flow]: while recording, a layer whose kernel cannot report dL/dh_t runs the generic graph;
  // one that can reports it from its backward pass.
  if (kernel != nullptr && GradientFlow::active() && (kernel->flags & KILN_KERNEL_REPORTS_DH) == 0) kernel = nullptr;
  const bool fused = kernel != nullptr;

  // Initial states, one [B, H] slice per layer and direction.
  KILN_CHECK(initial_state.empty() || initial_state.size() == state_size,
             "{}: expected {} initial state tensor(s) ({}), got {}", name, state_size, state_size == 2 ? "h0, c0" : "h0",
             initial_state.size());
  for (std::size_t j = 0; j < initial_state.size(); ++j) {
    const Shape want = unbatched ? Shape{L * dirs, H} : Shape{L * dirs, batch, H};
    KILN_CHECK(initial_state[j].defined() && initial_state[j].shape() == want, "{}: initial state {} must be {}, got {}",
               name, j == 0 ? "h0" : "c0", want, initial_state[j].defined() ? initial_state[j].shape() : Shape{});
  }
  auto initial = [&](std::int64_t index) {
    if (initial_state.empty()) return cells_.front()->zero_state(batch, x.dtype());
    State s;
    for (const auto& h0 : initial_state) {
      const Variable hb = unbatched ? unsqueeze(h0, 1) : h0;
      s.push_back(squeeze(narrow(hb, 0, index, 1), 0));
    }
    return s;
  };

  // Per-step liveness masks from lengths (Note [Variable lengths]).
  std::vector<Variable> live, dead;
  if (!fused) live = step_masks(len, steps, true), dead = step_masks(len, steps, false);

  Variable seq = options_.batch_first_ ? transpose(x, 0, 1) : x;  // time-major [T, B, I]
  std::vector<std::vector<Variable>> finals(state_size);
  for (std::int64_t l = 0; l < L; ++l) {
    std::vector<Variable> outs;
    std::vector<State> states;
    for (int d = 0; d < dirs; ++d) states.push_back(initial(l * dirs + d));
    if (fused && steps > 0 && batch > 0) {  // an empty sequence or batch has nothing for a kernel to do
      // Both directions of a layer in one node, side by side on Kiln's threads, writing one output.
      std::vector<plugins::Direction> run;
      for (int d = 0; d < dirs; ++d) {
        RecurrentCell* cell = cells_[static_cast<std::size_t>(l * dirs + d)].get();
        std::shared_ptr<FlowTrace> flow;
        if (GradientFlow::active()) {
          std::vector<Tensor> initial;
          for (const Variable& v : states[static_cast<std::size_t>(d)]) initial.push_back(v.value());
          flow = GradientFlow::open(this, l * dirs + d, d == 1, *cell, seq.value(), initial, len, "fused: " + kernel->name);
        }
        run.push_back({cell, &states[static_cast<std::size_t>(d)], d == 1, params, flow});
      }
      outs.push_back(plugins::run_fused(*kernel, seq, run, len));
    } else {
      for (int d = 0; d < dirs; ++d) {
        RecurrentCell& cell = *cells_[static_cast<std::size_t>(l * dirs + d)];
        std::shared_ptr<FlowTrace> flow;
        if (GradientFlow::active()) {
          std::vector<Tensor> initial;
          for (const Variable& v : states[static_cast<std::size_t>(d)]) initial.push_back(v.value());
          flow = GradientFlow::open(this, l * dirs + d, d == 1, cell, seq.value(), initial, len, "generic");
        }
        outs.push_back(steps > 0 ? run_steps(cell, seq, states[static_cast<std::size_t>(d)], live, dead, d == 1, flow)
                                 : Variable(zeros({0, batch, H}, x.dtype())));
      }
    }
    for (const State& s : states)
      for (std::size_t j = 0; j < state_size; ++j) finals[j].push_back(s[j]);
    seq = outs.size() == 1 ? outs[0] : concat(outs, 2);
    if (l + 1 < L && options_.dropout_ > 0) seq = dropout(seq, options_.dropout_, is_training());
  }
  RecurrentOutput r;
  r.output = options_.batch_first_ ? transpose(seq, 0, 1) : seq;
  r.h_n = stack(finals[0], 0);
  if (state_size > 1) r.c_n = stack(finals[1], 0);
  if (unbatched) {
    r.output = squeeze(r.output, batch_dim);
    r.h_n = squeeze(r.h_n, 1);
    if (r.c_n.defined()) r.c_n = squeeze(r.c_n, 1);
  }
  return r;
}

Variable Recurrent::forward(const Variable& input) { return forward_padded(input, Variable()); }

Variable Recurrent::forward_padded(const Variable& input, const Variable& lengths) {
  const RecurrentOutput r = forward(input, {}, lengths);
  if (options_.return_sequences_) return r.output;
  const int dirs = options_.bidirectional_ ? 2 : 1;
  const Variable last = narrow(r.h_n, 0, r.h_n.size(0) - dirs, dirs);  // [D, B, H] (or [D, H] unbatched)
  return last.dim() == 3 ? reshape(permute(last, {1, 0, 2}), {last.size(1), -1}) : reshape(last, {-1});
}

std::string Recurrent::extra_repr() const {
  std::string s = fmt::format("{}, {}", options_.input_size_, options_.hidden_size_);
  if (options_.num_layers_ != 1) s += fmt::format(", num_layers={}", options_.num_layers_);
  if (!options_.bias_) s += ", bias=false";
  if (options_.single_bias_) s += ", single_bias=true";
  if (!options_.return_sequences_) s += ", return_sequences=false";
  if (options_.impl_ != Impl::Auto)
    s += options_.impl_ == Impl::Fused ? ", impl=fused" : options_.impl_ == Impl::Compiled ? ", impl=compiled" : ", impl=generic";
  if (options_.batch_first_) s += ", batch_first=true";
  if (options_.dropout_ > 0) s += fmt::format(", dropout={}", options_.dropout_);
  if (options_.bidirectional_) s += ", bidirectional=true";
  return s;
}

RNN::RNN(RNNOptions o)
    : Recurrent("RNN", o, [](std::int64_t in, std::int64_t h, const RecurrentOptions& lo) {
        return std::make_shared<RNNCell>(
            RNNCellOptions(in, h).bias(lo.bias_).single_bias(lo.single_bias_).nonlinearity(lo.nonlinearity_));
      }) {}

LSTM::LSTM(LSTMOptions o)
    : Recurrent("LSTM", o, [](std::int64_t in, std::int64_t h, const RecurrentOptions& lo) {
        return std::make_shared<LSTMCell>(LSTMCellOptions(in, h).bias(lo.bias_).single_bias(lo.single_bias_));
      }) {}

std::shared_ptr<Recurrent> make_recurrent(const std::string& cell, const RecurrentOptions& options) {
  const CellSpec& spec = CellRegistry::global().at(cell);
  return std::make_shared<Recurrent>(spec.layer_name, options, spec.make);
}

GRU::GRU(GRUOptions o)
    : Recurrent("GRU", o, [](std::int64_t in, std::int64_t h, const RecurrentOptions& lo) {
        return std::make_shared<GRUCell>(
            GRUCellOptions(in, h).bias(lo.bias_).single_bias(lo.single_bias_).reset_after(lo.reset_after_));
      }) {}

}  // namespace kiln::nn

#include "layers/run_cell.hpp"

#include "autograd/tape.hpp"
#include "layers/gradient_flow.hpp"
#include "ops/ops.hpp"

namespace kiln::nn {

Variable run_steps(RecurrentCell& cell, const Variable& seq, State& state, const std::vector<Variable>& live,
                   const std::vector<Variable>& dead, bool reverse, const std::shared_ptr<FlowTrace>& flow) {
  const std::int64_t steps = seq.size(0);
  std::vector<Variable> out(static_cast<std::size_t>(steps));
  for (std::int64_t k = 0; k < steps; ++k) {
    const std::size_t t = static_cast<std::size_t>(reverse ? steps - 1 - k : k);
    TapeScope scope(reverse ? "reverse step" : "step", static_cast<std::int64_t>(t));  // Note [Tape scopes]
    State next = cell.step(squeeze(narrow(seq, 0, static_cast<std::int64_t>(t), 1), 0), state);
    KILN_CHECK(next.size() == state.size(), "{}: step returned {} state tensors, expected {}", cell.type_name(),
               next.size(), state.size());
    if (live.empty()) {
      out[t] = cell.output(next);
      state = std::move(next);
      if (flow && state[0].requires_grad())  // Note [Gradient flow]
        state[0].register_hook([flow, t](const Tensor& g) { flow->add(static_cast<std::int64_t>(t), g); });
      continue;
    }
    out[t] = masked_fill(cell.output(next), dead[t], 0.0);
    Variable stepped = next[0];
    for (std::size_t j = 0; j < state.size(); ++j) state[j] = where(live[t], next[j], state[j]);
    if (flow && stepped.requires_grad()) {
      // Note [Gradient flow]: a live row's h_t is the step's (whose gradient comes from y_t and the held
      // state); a row past its end holds its state, whose gradient is what reaches it from later steps.
      std::vector<bool> is_live, is_dead;
      for (double v : live[t].value().to_vector()) is_live.push_back(v != 0), is_dead.push_back(v == 0);
      stepped.register_hook([flow, t, is_live](const Tensor& g) { flow->add(static_cast<std::int64_t>(t), g, &is_live); });
      if (state[0].requires_grad())
        state[0].register_hook([flow, t, is_dead](const Tensor& g) { flow->add(static_cast<std::int64_t>(t), g, &is_dead); });
    }
  }
  return stack(out, 0);
}

std::vector<Variable> step_masks(const std::vector<std::int64_t>& lengths, std::int64_t steps, bool live) {
  std::vector<Variable> out;
  if (lengths.empty()) return out;
  const std::int64_t batch = static_cast<std::int64_t>(lengths.size());
  for (std::int64_t t = 0; t < steps; ++t) {
    std::vector<bool> m(static_cast<std::size_t>(batch));
    for (std::size_t b = 0; b < m.size(); ++b) m[b] = (t < lengths[b]) == live;
    out.emplace_back(from_data(m, {batch, 1}));
  }
  return out;
}

Variable run_cell(RecurrentCell& cell, const Variable& x, State& state, const std::vector<std::int64_t>& lengths,
                  bool reverse) {
  KILN_CHECK(x.defined() && x.dim() == 3, "run_cell: x must be [T, B, I], got {}", x.defined() ? x.shape() : Shape{});
  KILN_CHECK(lengths.empty() || static_cast<std::int64_t>(lengths.size()) == x.size(1),
             "run_cell: {} lengths for a batch of {}", lengths.size(), x.size(1));
  if (x.size(0) == 0) return Variable(zeros({0, x.size(1), cell.hidden_size()}, x.dtype()));
  return run_steps(cell, x, state, step_masks(lengths, x.size(0), true), step_masks(lengths, x.size(0), false), reverse);
}

}  // namespace kiln::nn

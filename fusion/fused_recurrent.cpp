#include "fusion/fused_recurrent.hpp"

#include <array>
#include <memory>

#include "autograd/tape.hpp"
#include "plugins/boundary.hpp"
#include "plugins/host.hpp"
#include "ops/ops.hpp"
#include "tensor/math.hpp"
#include "tensor/parallel.hpp"

namespace kiln::plugins {
namespace {

// One direction's problem, parameters and the memory it keeps for backward.
struct Run {
  kiln_recurrent_problem problem{};
  std::vector<Tensor> states, params;   // params in the kernel's order; undefined when the cell lacks one
  std::vector<int> state_input, param_input;  // index among the node's inputs, -1 when absent
  Tensor saved;
  std::shared_ptr<nn::FlowTrace> flow;  // Note [Gradient flow]: backward reports dL/dh_t here
};

struct Node {
  const Kernel* kernel;
  Tensor x;
  std::vector<std::int64_t> lengths;
  std::vector<Run> runs;
  std::int64_t T, B, H;
  Tensor packed;  // forward's output, for a kernel that reads y in backward (KILN_KERNEL_BACKWARD_READS_Y)
};

std::string describe(const Kernel& k) { return fmt::format("fused kernel '{}' from plugin '{}' ({})", k.name, k.plugin, k.origin); }

std::int32_t abi_dtype(DType d) { return d == kFloat64 ? KILN_FLOAT64 : KILN_FLOAT32; }

kiln_tensor view(void* data, DType dtype, const Shape& shape) {
  kiln_tensor t{};
  t.data = data;
  t.dtype = abi_dtype(dtype);
  t.rank = shape.rank();
  std::int64_t stride = 1;
  for (int i = t.rank - 1; i >= 0; --i) {
    t.shape[i] = shape[i];
    t.strides[i] = stride;
    stride *= shape[i];
  }
  return t;
}

// Note [Packed output]: a fused node's one output holds every direction's y, then every direction's
// final states ([B, H] each). With two directions and a kernel taking strided sequences
// (KILN_KERNEL_STRIDED_SEQUENCES) the ys are one [T, B, 2H] tensor, each direction writing its half of
// every row: the layer's output is a view of it, and its gradient reaches the kernels as it is — no
// concatenation forward, no split backward. Otherwise each direction's y is a contiguous [T, B, H].
struct PackedLayout {
  std::int64_t T, B, H, S, D;
  bool interleaved;
  std::int64_t ys() const { return T * B * H * D; }
  std::int64_t size() const { return ys() + D * S * B * H; }
  std::int64_t final_offset(std::int64_t d, std::int64_t s) const { return ys() + (d * S + s) * B * H; }
  kiln_tensor y(char* base, DType dt, std::int64_t d) const {
    kiln_tensor t = view(base + (interleaved ? d * H : d * T * B * H) * static_cast<std::int64_t>(element_size(dt)), dt, {T, B, H});
    if (interleaved) t.strides[0] = B * D * H, t.strides[1] = D * H;
    return t;
  }
};

kiln_recurrent_problem make_problem(DType dtype, std::int64_t T, std::int64_t B, std::int64_t I, std::int64_t H,
                                    bool has_bias, const std::vector<std::int64_t>& lengths, bool reverse) {
  kiln_recurrent_problem p{};
  p.dtype = abi_dtype(dtype);
  p.reverse = reverse ? 1 : 0;
  p.has_bias = has_bias ? 1 : 0;
  p.phase = KILN_FORWARD;
  p.steps = T, p.batch = B, p.input_size = I, p.hidden_size = H;
  p.lengths = lengths.empty() ? nullptr : lengths.data();
  return p;
}

Variable parameter(const nn::RecurrentCell& cell, const std::string& kernel_name, const ParamMap* map) {
  std::string name = kernel_name;
  if (map != nullptr) {
    const auto it = map->find(kernel_name);
    if (it == map->end()) return Variable();
    name = it->second;
  }
  for (const auto& [n, v] : cell.named_parameters(false))
    if (n == name) return v;
  return Variable();
}

bool has_bias(const Kernel& k, const nn::RecurrentCell& cell, const ParamMap* map) {
  bool any = false;
  for (const auto& p : k.param_names)
    if (p.rfind("bias", 0) == 0) any = any || parameter(cell, p, map).defined();
  return any;
}

// Runs f(i) for i in [0, n), side by side on Kiln's threads.
template <class F>
void each(std::size_t n, F&& f) {
  parallel_for(static_cast<std::int64_t>(n), 1, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) f(static_cast<std::size_t>(i));
  });
}

void check_errors(const Kernel& k, const char* phase, const std::vector<std::string>& errors) {
  for (const auto& e : errors) KILN_CHECK(e.empty(), "{} failed in {}: {}", describe(k), phase, e);
}

// A kiln_tensor describing `t` (contiguous, row-major); data null when t is undefined.
kiln_tensor to_abi(const Tensor& t) { return t.defined() ? view(t.raw_data(), t.dtype(), t.shape()) : kiln_tensor{}; }

}  // namespace

bool kernel_supports(const Kernel& kernel, const nn::RecurrentCell& cell, DType dtype, std::int64_t steps, std::int64_t batch,
                     const std::vector<std::int64_t>& lengths, bool reverse, std::string* why, const ParamMap* params) {
  if (dtype != kFloat32 && dtype != kFloat64) {
    if (why) *why = fmt::format("kernel '{}' runs float32 and float64, not {}", kernel.name, dtype);
    return false;
  }
  const kiln_recurrent_problem p = make_problem(dtype, steps, batch, cell.input_size(), cell.hidden_size(),
                                                has_bias(kernel, cell, params), lengths, reverse);
  std::array<char, 512> reason{};
  if (kernel.supports(&p, reason.data(), reason.size()) != 0) {
    if (why) *why = fmt::format("kernel '{}' ({}) does not run this call: {}", kernel.name, kernel.plugin,
                                kernel_text(reason.data(), reason.size()));
    return false;
  }
  return true;
}

Variable run_fused(const Kernel& kernel, const Variable& x, const std::vector<Direction>& directions,
                   const std::vector<std::int64_t>& lengths) {
  KILN_CHECK(x.defined() && x.dim() == 3, "fused {}: x must be [T, B, I], got {}", kernel.name, x.defined() ? x.shape() : Shape{});
  KILN_CHECK(!directions.empty(), "fused {}: no directions to run", kernel.name);
  auto node = std::make_shared<Node>();
  node->kernel = &kernel;
  node->x = x.value();
  node->lengths = lengths;
  node->T = x.size(0), node->B = x.size(1), node->H = directions.front().cell->hidden_size();
  const std::int64_t T = node->T, B = node->B, H = node->H, S = kernel.abi.state_count;
  std::vector<Variable> inputs{x};
  for (const Direction& d : directions) {
    const nn::RecurrentCell& cell = *d.cell;
    KILN_CHECK(cell.input_size() == x.size(2) && cell.hidden_size() == H, "fused {}: cell {}({}, {}) for input {}",
               kernel.name, cell.type_name(), cell.input_size(), cell.hidden_size(), x.shape());
    KILN_CHECK(static_cast<std::int64_t>(d.state->size()) == S, "fused {}: {} state tensors given, the kernel keeps {}",
               kernel.name, d.state->size(), S);
    Run run;
    run.problem = make_problem(x.dtype(), T, B, x.size(2), H, has_bias(kernel, cell, d.params), node->lengths, d.reverse);
    for (const Variable& s : *d.state) {
      KILN_CHECK(s.shape() == (Shape{B, H}) && s.dtype() == x.dtype(), "fused {}: state must be {} [{}, {}], got {} {}",
                 kernel.name, x.dtype(), B, H, s.dtype(), s.shape());
      run.state_input.push_back(static_cast<int>(inputs.size()));
      run.states.push_back(s.value());
      inputs.push_back(s);
    }
    for (const auto& name : kernel.param_names) {
      const Variable p = parameter(cell, name, d.params);
      KILN_CHECK(!p.defined() || p.dtype() == x.dtype(), "fused {}: parameter {} is {}, the input {}", kernel.name, name,
                 p.dtype(), x.dtype());
      run.param_input.push_back(p.defined() ? static_cast<int>(inputs.size()) : -1);
      run.params.push_back(p.defined() ? p.value() : Tensor());
      if (p.defined()) inputs.push_back(p);
    }
    std::string why;
    KILN_CHECK(kernel_supports(kernel, cell, x.dtype(), T, B, lengths, d.reverse, &why, d.params), "{}", why);
    run.saved = kernel_buffer(kernel.saved_bytes(&run.problem), describe(kernel), "saved_bytes");
    KILN_CHECK(d.flow == nullptr || (kernel.flags & KILN_KERNEL_REPORTS_DH) != 0, "fused {}: asked for dL/dh_t, which the kernel "
               "does not report (KILN_KERNEL_REPORTS_DH)", kernel.name);
    run.flow = d.flow;
    node->runs.push_back(std::move(run));
  }

  const PackedLayout layout{T, B, H, S, static_cast<std::int64_t>(directions.size()),
                            directions.size() == 2 && (kernel.flags & KILN_KERNEL_STRIDED_SEQUENCES) != 0};
  Tensor packed({layout.size()}, x.dtype());  // Note [Packed output]
  const std::size_t esize = element_size(x.dtype());
  auto at = [&](const Tensor& t, std::int64_t offset) { return static_cast<char*>(t.raw_data()) + offset * esize; };
  std::vector<Tensor> works;  // allocated here, not on the pool's threads: a fixed order of allocations
  for (const Run& run : node->runs) works.push_back(kernel_buffer(kernel.work_bytes(&run.problem), describe(kernel), "work_bytes"));
  std::vector<std::string> errors(directions.size());
  each(directions.size(), [&](std::size_t d) {
    Run& run = node->runs[d];
    const kiln_tensor xa = to_abi(node->x);
    std::vector<kiln_tensor> states, params, finals;
    for (const auto& s : run.states) states.push_back(to_abi(s));
    for (const auto& p : run.params) params.push_back(to_abi(p));
    kiln_tensor y = layout.y(at(packed, 0), x.dtype(), static_cast<std::int64_t>(d));
    for (std::int64_t s = 0; s < S; ++s)
      finals.push_back(view(at(packed, layout.final_offset(static_cast<std::int64_t>(d), s)), x.dtype(), {B, H}));
    std::array<char, 1024> err{};
    if (kernel.forward(&host_services(), &run.problem, &xa, states.data(), params.data(), &y, finals.data(), run.saved.raw_data(),
                           works[d].raw_data(), err.data(), err.size()) != 0)
      errors[d] = kernel_text(err.data(), err.size());
  });
  check_errors(kernel, "forward", errors);
  // Kept for backward: a view of the same storage, which the next layer or the loss usually keeps anyway.
  if ((kernel.flags & KILN_KERNEL_BACKWARD_READS_Y) != 0) node->packed = packed;

  const std::string& op = kernel.op;
  const Variable out = record(op.c_str(), packed, inputs, [node, layout](const Tensor& dy, Grads& grads) {
    const Kernel& k = *node->kernel;
    const std::int64_t B = node->B, H = node->H, S = k.abi.state_count;
    const DType dt = dy.dtype();
    const std::size_t esize = element_size(dt);
    const std::size_t n = node->runs.size();
    std::vector<Tensor> dx(n);
    std::vector<std::vector<Tensor>> dstates(n), dparams(n);
    std::vector<std::string> errors(n);
    // The last backward of this node may use the saved memory as scratch (plugin.h, KILN_LAST_BACKWARD).
    const std::int32_t phase = grads.retains_graph() ? KILN_BACKWARD : KILN_LAST_BACKWARD;
    std::vector<Tensor> works(n);
    auto prepare = [&](std::size_t d) {
      const Run& run = node->runs[d];
      kiln_recurrent_problem p = run.problem;
      p.phase = phase;
      works[d] = kernel_buffer(k.work_bytes(&p), describe(k), "work_bytes");
      if (grads.needs(0)) dx[d] = Tensor(node->x.shape(), dt);
      for (std::size_t s = 0; s < run.states.size(); ++s)
        dstates[d].push_back(grads.needs(run.state_input[s]) ? Tensor(run.states[s].shape(), dt) : Tensor());
      for (std::size_t q = 0; q < run.params.size(); ++q) {
        const bool need = run.param_input[q] >= 0 && grads.needs(run.param_input[q]);
        dparams[d].push_back(need ? Tensor(run.params[q].shape(), dt) : Tensor());
      }
    };
    // Side by side, the directions' buffers are all allocated here, not on the pool's threads (a fixed
    // order of allocations); one after the other, each direction allocates when it starts and frees its
    // scratch when done, after the direction before it has freed its saved memory.
    const bool in_turn = n == 1 || num_threads() == 1;
    if (!in_turn)
      for (std::size_t d = 0; d < n; ++d) prepare(d);
    each(n, [&](std::size_t d) {
      if (in_turn) prepare(d);
      const Run& run = node->runs[d];
      kiln_recurrent_problem problem = run.problem;
      problem.phase = phase;
      const kiln_tensor xa = to_abi(node->x);
      std::vector<kiln_tensor> states, params, dfinal, ds, dp;
      for (const auto& s : run.states) states.push_back(to_abi(s));
      for (const auto& p : run.params) params.push_back(to_abi(p));
      char* base = static_cast<char*>(dy.raw_data());
      const auto dd = static_cast<std::int64_t>(d);
      const kiln_tensor dya = layout.y(base, dt, dd);
      kiln_tensor ya{};
      if (node->packed.defined()) {
        ya = layout.y(static_cast<char*>(node->packed.raw_data()), dt, dd);
        problem.y = &ya;
      }
      for (std::int64_t s = 0; s < S; ++s) dfinal.push_back(view(base + layout.final_offset(dd, s) * esize, dt, {B, H}));
      for (const auto& g : dstates[d]) ds.push_back(to_abi(g));
      for (const auto& g : dparams[d]) dp.push_back(to_abi(g));
      kiln_tensor dxa = to_abi(dx[d]);
      Tensor dh;  // Note [Gradient flow]
      kiln_tensor dha{};
      if (run.flow != nullptr) {
        dh = Tensor(Shape{node->T, B, H}, dt);
        dha = to_abi(dh);
        problem.dh = &dha;
      }
      std::array<char, 1024> err{};
      if (k.backward(&host_services(), &problem, &xa, states.data(), params.data(), run.saved.raw_data(), &dya, dfinal.data(),
                         &dxa, ds.data(), dp.data(), works[d].raw_data(), err.data(), err.size()) != 0)
        errors[d] = kernel_text(err.data(), err.size());
      else if (run.flow != nullptr)
        for (std::int64_t t = 0; t < node->T; ++t) run.flow->add(t, dh.view_range(t * B * H, Shape{B, H}));
      // The last backward frees a direction's saved memory as soon as it is done with it.
      if (phase == KILN_LAST_BACKWARD) node->runs[d].saved = Tensor();
      if (in_turn) {
        works[d] = Tensor();
        if (d > 0 && dx[d].defined()) {
          math::add_(dx[0], dx[d]);
          dx[d] = Tensor();
        }
      }
    });
    check_errors(k, "backward", errors);
    // The directions' input gradients summed in place into one, and every gradient moved, not copied:
    // one held only by the tape becomes the leaf's .grad as it is.
    for (std::size_t d = 1; d < n; ++d)
      if (dx[d].defined()) {
        math::add_(dx[0], dx[d]);
        dx[d] = Tensor();
      }
    for (std::size_t d = 0; d < n; ++d) {
      const Run& run = node->runs[d];
      if (dx[d].defined()) grads.add(0, std::move(dx[d]));
      for (std::size_t s = 0; s < run.states.size(); ++s)
        if (dstates[d][s].defined()) grads.add(static_cast<std::size_t>(run.state_input[s]), std::move(dstates[d][s]));
      for (std::size_t p = 0; p < run.params.size(); ++p)
        if (dparams[d][p].defined()) grads.add(static_cast<std::size_t>(run.param_input[p]), std::move(dparams[d][p]));
    }
  });

  for (std::size_t d = 0; d < directions.size(); ++d) {
    nn::State& state = *directions[d].state;
    for (std::int64_t s = 0; s < S; ++s)
      state[static_cast<std::size_t>(s)] = reshape(narrow(out, 0, layout.final_offset(static_cast<std::int64_t>(d), s), B * H), {B, H});
  }
  const std::int64_t D = layout.D;
  if (layout.interleaved || D == 1) return reshape(narrow(out, 0, 0, layout.ys()), {T, B, D * H});
  std::vector<Variable> ys;
  for (std::int64_t d = 0; d < D; ++d) ys.push_back(reshape(narrow(out, 0, d * T * B * H, T * B * H), {T, B, H}));
  return concat(ys, 2);
}

}  // namespace kiln::plugins

#include "experiment/instruments.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "autograd/grad_mode.hpp"
#include "layers/gradient_flow.hpp"
#include "ops/activation_probe.hpp"
#include "ops/ops.hpp"
#include "plugins/registry.hpp"
#include "sequence/recurrent.hpp"
#include "tensor/error.hpp"
#include "tensor/linalg.hpp"
#include "tensor/random.hpp"

namespace kiln::experiment {
namespace {

// Every module under `m` with its dotted path ("" for m itself).
void walk(const nn::Module& m, const std::string& path, std::map<const nn::Module*, std::string>& out) {
  out.emplace(&m, path);
  for (const auto& [name, child] : m.named_children()) walk(*child, path.empty() ? name : path + "." + name, out);
}

// "model[0] LSTM l0", "encoder LSTM l1_reverse".
std::string layer_name(const nn::FlowTrace& t, const std::map<const nn::Module*, std::string>& paths) {
  const auto* rec = dynamic_cast<const nn::Recurrent*>(t.layer);
  const std::int64_t dirs = rec != nullptr && rec->options().bidirectional_ ? 2 : 1;
  const auto it = paths.find(t.layer);
  std::string where = it == paths.end() ? "" : it->second;
  if (!where.empty() && std::all_of(where.begin(), where.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    where = "model[" + where + "]";
  return fmt::format("{}{}{} l{}{}", where, where.empty() ? "" : " ", t.layer != nullptr ? t.layer->type_name() : "layer",
                     t.index / dirs, t.reverse ? "_reverse" : "");
}

// Row b of step t of a time-major [T, B, I] sequence, [1, I] (a view).
Tensor step_row(const Tensor& seq, std::int64_t t, std::int64_t b) {
  const std::int64_t B = seq.size(1), I = seq.size(2);
  return seq.view_range((t * B + b) * I, Shape{1, I});
}

// `row` [1, W] repeated n times, [n, W], in `dtype`.
Tensor repeat_row(const Tensor& row, std::int64_t n) {
  const std::vector<double> v = row.to_vector();
  std::vector<double> out;
  out.reserve(v.size() * static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) out.insert(out.end(), v.begin(), v.end());
  return from_data(out, {n, static_cast<std::int64_t>(v.size())}).to(row.dtype());
}

// The cell's recurrent matrices in blocks of H x H: weight_hh's gate blocks and any other parameter the
// cell names as recurrent (a full gate recurrence's weight_gate_recurrence).
std::vector<MatrixSpectrum> weight_spectra(const nn::RecurrentCell& cell) {
  std::vector<MatrixSpectrum> out;
  const std::int64_t H = cell.hidden_size();
  for (const auto& [name, p] : cell.named_parameters(false)) {
    const bool recurrent = name.find("hh") != std::string::npos || name.find("recurren") != std::string::npos;
    if (!recurrent || p.dim() != 2 || H == 0) continue;
    auto add = [&](const std::string& what, const Tensor& m) {
      MatrixSpectrum s;
      s.name = what;
      s.singular_values = linalg::svdvals(m);
      s.radius = m.size(0) == m.size(1) ? linalg::spectral_radius(m) : std::nan("");
      out.push_back(std::move(s));
    };
    if (p.size(1) == H && p.size(0) % H == 0 && p.size(0) > H) {  // gate blocks, each H x H
      for (std::int64_t r = 0; r < p.size(0) / H; ++r) add(fmt::format("{}[gate {}]", name, r), p.value().view_range(r * H * H, Shape{H, H}));
    } else {
      add(name, p.value());
    }
  }
  return out;
}

// The steps at which Jacobians are taken: `count` spread over 1 .. T-1.
std::vector<std::int64_t> jacobian_steps(std::int64_t T, std::int64_t count) {
  std::vector<std::int64_t> out;
  for (std::int64_t j = 1; j <= count && T > 1; ++j) {
    const std::int64_t t = std::max<std::int64_t>(1, (j * (T - 1) + count / 2) / count);
    if (out.empty() || out.back() != t) out.push_back(t);
  }
  return out;
}

// ds_t/ds_{t-1} of the whole state (h, then c, ...) of the first sequence at the sampled steps, each from
// one backward pass: the state copied once per output unit, the step run on that batch, and the identity
// as the seed, so row r of each state input's gradient is row r of the Jacobian. On a copy of the cell,
// so the model's gradients are untouched.
std::vector<MatrixSpectrum> jacobian_spectra(const nn::FlowTrace& t, std::int64_t count) {
  std::vector<MatrixSpectrum> out;
  if (t.cell == nullptr || t.reverse || !t.input.defined() || t.input.dim() != 3 || t.input.size(1) == 0) return out;
  std::int64_t T = t.input.size(0);
  if (!t.lengths.empty()) T = std::min(T, t.lengths[0]);
  const auto wanted = jacobian_steps(T, count);
  if (wanted.empty()) return out;
  auto copy = std::dynamic_pointer_cast<nn::RecurrentCell>(t.cell->clone());
  KILN_CHECK(copy != nullptr, "instruments: {}'s clone() is not a RecurrentCell", t.cell->type_name());
  copy->eval();
  nn::State state;
  for (const Tensor& s : t.initial) state.emplace_back(s.view_range(0, Shape{1, s.size(1)}));
  const std::int64_t H = t.cell->hidden_size(), S = static_cast<std::int64_t>(state.size()), N = S * H;
  if (N == 0 || N > 4096) return out;  // a Jacobian of more than 4096^2 is not an instrument's to take
  std::size_t next = 0;
  for (std::int64_t step = 0; step <= wanted.back(); ++step) {
    const Tensor x = step_row(t.input, step, 0);
    if (step == wanted[next]) {
      std::vector<Variable> leaves;
      for (const Variable& s : state) leaves.emplace_back(repeat_row(s.value(), N), true);
      const nn::State stepped = copy->step(Variable(repeat_row(x, N)), leaves);
      std::vector<Variable> parts(stepped.begin(), stepped.end());
      const Variable all = concat(parts, 1);  // [N, S*H]
      KILN_CHECK(all.size(1) == N, "instruments: {}'s step returned {} state values per row, expected {}", t.cell->type_name(),
                 all.size(1), N);
      std::vector<double> identity(static_cast<std::size_t>(N * N), 0.0);
      for (std::int64_t r = 0; r < N; ++r) identity[static_cast<std::size_t>(r * N + r)] = 1;
      all.backward(from_data(identity, {N, N}).to(all.dtype()));
      std::vector<double> j(static_cast<std::size_t>(N * N));
      for (std::int64_t s = 0; s < S; ++s) {
        const Tensor g = leaves[static_cast<std::size_t>(s)].grad();
        const std::vector<double> gv = g.defined() ? g.to_vector() : std::vector<double>(static_cast<std::size_t>(N * H), 0.0);
        for (std::int64_t r = 0; r < N; ++r)
          for (std::int64_t c = 0; c < H; ++c) j[static_cast<std::size_t>(r * N + s * H + c)] = gv[static_cast<std::size_t>(r * H + c)];
      }
      const Tensor jac = from_data(j, {N, N});
      MatrixSpectrum m;
      m.name = fmt::format("step Jacobian t={}", step);
      m.step = step;
      m.singular_values = linalg::svdvals(jac);
      m.radius = linalg::spectral_radius(jac);
      out.push_back(std::move(m));
      ++next;
    }
    NoGradGuard no_grad;
    std::vector<Variable> plain;
    for (const Variable& s : state) plain.emplace_back(s.value());
    state = copy->step(Variable(x), plain);
    if (next == wanted.size()) break;
  }
  return out;
}

// The share of each of a step's sigmoids and tanhs near its bounds, over every live row and step.
std::vector<Saturation> saturation(const nn::FlowTrace& t) {
  std::vector<Saturation> out;
  if (t.cell == nullptr || !t.input.defined() || t.input.dim() != 3) return out;
  auto& cell = const_cast<nn::RecurrentCell&>(*t.cell);  // step() only reads the parameters here
  const std::int64_t T = t.input.size(0), B = t.input.size(1);
  struct Count {
    std::string op;
    std::int64_t width = 0;
    double near = 0, total = 0;
  };
  std::vector<Count> counts;
  std::size_t call = 0;
  std::int64_t step = 0;
  auto live = [&](std::int64_t b) { return t.lengths.empty() || step < t.lengths[static_cast<std::size_t>(b)]; };
  ActivationProbe probe([&](const char* op, const Tensor& y) {
    if (y.dim() < 1 || y.size(0) != B) return;  // not per row
    if (call == counts.size()) counts.push_back({fmt::format("{} #{}", op, call + 1), y.numel() / B, 0, 0});
    Count& c = counts[call++];
    const bool sig = std::string(op) == "sigmoid";
    const std::vector<double> v = y.to_vector();
    const std::int64_t w = static_cast<std::int64_t>(v.size()) / B;
    for (std::int64_t b = 0; b < B; ++b) {
      if (!live(b)) continue;
      for (std::int64_t k = 0; k < w; ++k) {
        const double a = v[static_cast<std::size_t>(b * w + k)];
        c.near += sig ? (a < 0.1 || a > 0.9) : std::abs(a) > 0.9;
      }
      c.total += static_cast<double>(w);
    }
  });
  NoGradGuard no_grad;
  std::vector<Variable> state;
  for (const Tensor& s : t.initial) state.emplace_back(s);
  for (std::int64_t k = 0; k < T; ++k) {
    step = t.reverse ? T - 1 - k : k;
    call = 0;
    state = cell.step(Variable(t.input.view_range(step * B * t.input.size(2), Shape{B, t.input.size(2)})), state);
  }
  for (const Count& c : counts) out.push_back({c.op, c.width, c.total > 0 ? c.near / c.total : 0});
  return out;
}

}  // namespace

InstrumentRecord record_instruments(Model& model, const Batch& batch, const std::function<Variable(const Variable&)>& loss_of,
                                    const InstrumentSpec& spec, std::int64_t step) {
  InstrumentRecord r;
  r.step = step;
  KeepDefaultGenerator keep;  // nothing here moves the run's random draws
  nn::Module& m = model.module();
  const bool training = m.is_training();
  m.eval();
  struct Restore {
    nn::Module& m;
    bool training;
    ~Restore() {
      m.zero_grad();
      m.train(training);
    }
  } restore{m, training};
  std::vector<nn::FlowTrace> traces;
  {
    AutoGradMode grad(true);
    nn::GradientFlow flow;
    const Variable loss = loss_of(model.forward(batch));
    if (spec.gradient_flow) loss.backward();
    traces = flow.traces();
  }
  // A decoder called a step at a time opens a trace per call: its calls are one sequence, in call order.
  std::vector<nn::FlowTrace> merged;
  for (nn::FlowTrace& t : traces) {
    auto same = std::find_if(merged.begin(), merged.end(), [&](const nn::FlowTrace& m) { return m.layer == t.layer && m.index == t.index; });
    if (same == merged.end()) {
      merged.push_back(std::move(t));
    } else {
      same->sum_sq.insert(same->sum_sq.end(), t.sum_sq.begin(), t.sum_sq.end());
      if (t.input.defined() && (!same->input.defined() || t.input.size(0) > same->input.size(0))) {  // instruments read the longest call
        same->input = t.input, same->initial = t.initial, same->lengths = t.lengths;
      }
    }
  }
  traces = std::move(merged);
  std::map<const nn::Module*, std::string> paths;
  walk(m, "", paths);
  for (const nn::FlowTrace& t : traces) {
    LayerInstruments l;
    l.name = layer_name(t, paths);
    l.path = t.path;
    if (spec.gradient_flow) l.grad_norms = t.norms();
    if (spec.spectra && t.cell != nullptr) {
      l.spectra = weight_spectra(*t.cell);
      for (auto& j : jacobian_spectra(t, spec.jacobian_steps)) l.spectra.push_back(std::move(j));
    }
    if (spec.saturation) l.saturation = saturation(t);
    r.layers.push_back(std::move(l));
  }
  return r;
}

std::vector<std::pair<std::string, std::string>> layer_paths(Model& model) {
  std::map<const nn::Module*, std::string> paths;
  walk(model.module(), "", paths);
  std::vector<std::pair<const nn::Module*, std::string>> ordered;  // in the model's order, not by address
  std::function<void(const nn::Module&)> visit = [&](const nn::Module& m) {
    if (dynamic_cast<const nn::Recurrent*>(&m) != nullptr) ordered.emplace_back(&m, paths[&m]);
    for (const auto& [name, child] : m.named_children()) visit(*child);
  };
  visit(model.module());
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [m, path] : ordered) {
    const auto& rec = dynamic_cast<const nn::Recurrent&>(*m);
    const plugins::Kernel* k = rec.choose_kernel();
    nn::FlowTrace t;
    t.layer = m;
    std::string name = layer_name(t, paths);
    name = name.substr(0, name.rfind(" l0"));
    out.emplace_back(name, k != nullptr ? fmt::format("fused: {} ({})", k->name, k->plugin) : "generic");
  }
  return out;
}

std::vector<PathTiming> time_paths(Model& model, const Batch& batch, const std::function<Variable(const Variable&)>& loss_of) {
  std::vector<nn::Recurrent*> layers;
  std::function<void(nn::Module&)> visit = [&](nn::Module& m) {
    if (auto* r = dynamic_cast<nn::Recurrent*>(&m)) layers.push_back(r);
    for (const auto& [name, child] : m.named_children()) visit(*child);
  };
  visit(model.module());
  if (layers.empty()) return {};
  std::vector<nn::Impl> impls;
  bool any_kernel = false;
  for (nn::Recurrent* r : layers) impls.push_back(r->options().impl_), any_kernel |= r->choose_kernel() != nullptr;
  KeepDefaultGenerator keep;
  nn::Module& m = model.module();
  const bool training = m.is_training();
  m.eval();
  struct Restore {
    nn::Module& m;
    std::vector<nn::Recurrent*>& layers;
    std::vector<nn::Impl>& impls;
    bool training;
    ~Restore() {
      for (std::size_t i = 0; i < layers.size(); ++i) layers[i]->set_impl(impls[i]);
      m.zero_grad();
      m.train(training);
    }
  } restore{m, layers, impls, training};
  AutoGradMode grad(true);
  auto time = [&] {
    double best = 1e300;
    for (int k = 0; k < 4; ++k) {  // the first warms the caches and the allocator
      const auto start = std::chrono::steady_clock::now();
      loss_of(model.forward(batch)).backward();
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      if (k > 0) best = std::min(best, ms);
      m.zero_grad();
    }
    return best;
  };
  std::vector<PathTiming> out;
  for (nn::Recurrent* r : layers) r->set_impl(nn::Impl::Generic);
  out.push_back({"generic", time()});
  if (any_kernel) {
    for (std::size_t i = 0; i < layers.size(); ++i) layers[i]->set_impl(impls[i] == nn::Impl::Generic ? nn::Impl::Auto : impls[i]);
    out.push_back({"fused", time()});
  }
  return out;
}

std::string to_json_line(const InstrumentRecord& r) {
  nlohmann::json j;
  j["step"] = r.step;
  j["layers"] = nlohmann::json::array();
  for (const LayerInstruments& l : r.layers) {
    nlohmann::json jl{{"name", l.name}, {"path", l.path}, {"grad_norms", l.grad_norms}};
    jl["spectra"] = nlohmann::json::array();
    for (const auto& s : l.spectra)
      jl["spectra"].push_back({{"name", s.name}, {"step", s.step}, {"singular_values", s.singular_values}, {"radius", s.radius}});
    jl["saturation"] = nlohmann::json::array();
    for (const auto& s : l.saturation) jl["saturation"].push_back({{"op", s.op}, {"width", s.width}, {"fraction", s.fraction}});
    j["layers"].push_back(std::move(jl));
  }
  return j.dump();
}

InstrumentRecord from_json_line(const std::string& line) {
  try {
    const nlohmann::json j = nlohmann::json::parse(line);
    InstrumentRecord r;
    r.step = j.at("step").get<std::int64_t>();
    for (const auto& jl : j.at("layers")) {
      LayerInstruments l;
      l.name = jl.at("name").get<std::string>();
      l.path = jl.at("path").get<std::string>();
      l.grad_norms = jl.at("grad_norms").get<std::vector<double>>();
      for (const auto& s : jl.at("spectra"))
        l.spectra.push_back({s.at("name").get<std::string>(), s.at("step").get<std::int64_t>(),
                             s.at("singular_values").get<std::vector<double>>(), s.at("radius").get<double>()});
      for (const auto& s : jl.at("saturation"))
        l.saturation.push_back({s.at("op").get<std::string>(), s.at("width").get<std::int64_t>(), s.at("fraction").get<double>()});
      r.layers.push_back(std::move(l));
    }
    return r;
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("not an instruments record ({}): {}", e.what(), line.substr(0, 80)));
  }
}

}  // namespace kiln::experiment

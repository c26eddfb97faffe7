#include "fusion/check_plugin.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "autograd/grad_mode.hpp"
#include "autograd/tape.hpp"
#include "layers/run_cell.hpp"
#include "layers/cell_registry.hpp"
#include "ops/ops.hpp"
#include "fusion/fused_recurrent.hpp"
#include "tensor/random.hpp"

namespace kiln::plugins {

CellMaker reference_cell(const std::string& cell_name, const nn::CellRegistry& cells) {
  const nn::CellSpec* spec = cells.get(cell_name);
  if (spec == nullptr) return nullptr;
  nn::CellFactory make = spec->make;
  return [make](std::int64_t i, std::int64_t h, bool b) { return make(i, h, nn::RecurrentOptions(i, h).bias(b)); };
}

bool CheckReport::passed() const {
  if (cases == 0) return false;
  return std::all_of(tensors.begin(), tensors.end(), [](const TensorCheck& t) { return t.passed(); });
}

double relative_error(const Tensor& a, const Tensor& b) {
  const auto va = a.to_vector(), vb = b.to_vector();
  if (va.size() != vb.size()) return INFINITY;
  double worst = 0;
  for (std::size_t i = 0; i < va.size(); ++i) {
    const double e = std::abs(va[i] - vb[i]) / std::max(1.0, std::abs(vb[i]));
    worst = std::isnan(e) ? INFINITY : std::max(worst, e);
  }
  return worst;
}

std::string CheckReport::to_string() const {
  std::string s = fmt::format("check_plugin: kernel '{}' from plugin '{}' against the generic graph, {} cases\n", kernel, plugin, cases);
  std::size_t w = 18;  // the tensor column fits the longest name ("grad weight_peephole")
  for (const auto& t : tensors) w = std::max(w, t.tensor.size());
  s += fmt::format("  {:<{}} {:<8} {:>11} {:>10}  {}\n", "tensor", w, "dtype", "worst err", "tolerance", "worst case");
  for (const auto& t : tensors)
    s += fmt::format("  {:<{}} {:<8} {:>11.2e} {:>10.0e}  {}{}\n", t.tensor, w, t.dtype, t.worst, t.tolerance, t.worst_case,
                     t.passed() ? "" : "   <-- FAIL");
  for (const auto& k : skipped) s += fmt::format("  declined: {}\n", k);
  s += passed() ? "PASS\n" : cases == 0 ? "FAIL (no case ran)\n" : "FAIL\n";
  return s;
}

namespace {

struct Case {
  std::int64_t batch, input, hidden, steps;
  bool lengths, reverse, bias;
  DType dtype;
  std::string describe() const {
    return fmt::format("B={} I={} H={} T={}{}{}{}", batch, input, hidden, steps, lengths ? " lengths" : "", reverse ? " reverse" : "",
                       bias ? "" : " no-bias");
  }
};


struct Outcome {
  std::vector<std::pair<std::string, Tensor>> tensors;
};

// Runs one path (fused or generic) on fresh leaves made from `values`, returns outputs and gradients.
Outcome run_path(const Kernel* kernel, nn::RecurrentCell& cell, const std::vector<Tensor>& values, const Case& c,
                 const std::vector<std::int64_t>& lengths, const std::vector<Tensor>& seeds, const ParamMap* params) {
  AutoGradMode grad(true);  // a layer may confirm its kernel inside the caller's NoGradGuard
  for (auto& [name, p] : cell.named_parameters(false)) p.zero_grad();
  Variable x(values[0].clone(), true);
  nn::State state;
  std::vector<Variable> leaves;
  for (std::size_t s = 0; s < cell.state_size(); ++s) {
    state.emplace_back(values[1 + s].clone(), true);
    leaves.push_back(state.back());
  }
  Variable y;
  if (kernel != nullptr)
    y = run_fused(*kernel, x, {{&cell, &state, c.reverse, params}}, lengths);
  else
    y = nn::run_cell(cell, x, state, lengths, c.reverse);
  Variable loss = sum(y * Variable(seeds[0]));
  for (std::size_t s = 0; s < state.size(); ++s) loss = loss + sum(state[s] * Variable(seeds[1 + s]));
  loss.backward();
  Outcome o;
  o.tensors.emplace_back("output", y.value());
  for (std::size_t s = 0; s < state.size(); ++s) o.tensors.emplace_back(s == 0 ? "h_n" : "c_n", state[s].value());
  o.tensors.emplace_back("grad x", x.grad());
  for (std::size_t s = 0; s < leaves.size(); ++s) o.tensors.emplace_back(s == 0 ? "grad h0" : "grad c0", leaves[s].grad());
  for (auto& [name, p] : cell.named_parameters(false)) o.tensors.emplace_back("grad " + name, p.grad());
  return o;
}

// The worst error per tensor and row label (the dtype, or "f32 large") over the cases run so far, in the
// order first seen: the case nearest its tolerance, or furthest past it (NaN counts as past).
struct Worst {
  std::map<std::pair<std::string, std::string>, TensorCheck> by_key;
  std::vector<std::pair<std::string, std::string>> order;
  void add(const std::string& tensor, const std::string& label, double tol, double error, const std::string& where) {
    const auto key = std::make_pair(tensor, label);
    if (!by_key.count(key)) {
      by_key[key] = TensorCheck{key.first, key.second, 0, tol, ""};
      order.push_back(key);
    }
    TensorCheck& w = by_key[key];
    if (!(error / tol <= w.worst / w.tolerance) || w.worst_case.empty()) w.worst = error, w.tolerance = tol, w.worst_case = where;
  }
  void into(CheckReport& report) const {
    for (const auto& key : order) report.tensors.push_back(by_key.at(key));
  }
};

// Runs case c on `cell` (its parameters already set) on both paths and records the errors; false when the
// kernel declines the case (its reason in report.skipped).
bool run_case(const Kernel& kernel, nn::RecurrentCell& cell, const Case& c, const ParamMap* params, Generator& gen,
              const CheckOptions& options, CheckReport& report, Worst& worst, const std::string& label = "") {
  std::vector<std::int64_t> len;
  if (c.lengths)
    for (std::int64_t b = 0; b < c.batch; ++b) len.push_back(b == 0 ? c.steps : b == 1 ? 0 : std::max<std::int64_t>(1, c.steps - 2));
  std::string why;
  if (!kernel_supports(kernel, cell, c.dtype, c.steps, c.batch, len, c.reverse, &why, params)) {
    report.skipped.push_back(fmt::format("{} {}: {}", c.describe(), dtype_name(c.dtype), why));
    return false;
  }
  std::vector<Tensor> values{uniform({c.steps, c.batch, c.input}, -1, 1, c.dtype, &gen)};
  std::vector<Tensor> seeds{uniform({c.steps, c.batch, c.hidden}, -1, 1, c.dtype, &gen)};
  for (std::size_t s = 0; s < cell.state_size(); ++s) {
    values.push_back(uniform({c.batch, c.hidden}, -1, 1, c.dtype, &gen));
    seeds.push_back(uniform({c.batch, c.hidden}, -1, 1, c.dtype, &gen));
  }
  const Outcome generic = run_path(nullptr, cell, values, c, len, seeds, params);
  const Outcome fused = run_path(&kernel, cell, values, c, len, seeds, params);
  ++report.cases;
  const double tol = c.dtype == kFloat32 ? options.tolerance_f32 : options.tolerance_f64;
  for (std::size_t i = 0; i < generic.tensors.size(); ++i)
    worst.add(generic.tensors[i].first, label.empty() ? std::string(dtype_name(c.dtype)) : label, tol,
              relative_error(fused.tensors[i].second, generic.tensors[i].second), c.describe());
  return true;
}

// Parameters from U(-bound, bound): 0.8 for the small grid, PyTorch's 1/sqrt(H) at realistic sizes (where
// 0.8 would saturate every gate and hide the kernel's arithmetic behind flat sigmoids).
void randomize(nn::RecurrentCell& cell, DType dtype, Generator& gen, double bound = 0.8) {
  for (auto& [name, p] : cell.named_parameters(false)) p.set_value(uniform(p.shape(), -bound, bound, dtype, &gen));
}

// Gives a cell's parameters random values for as long as it lives, then puts back their values and
// gradients: confirming a kernel on a user's cell must leave the cell as it was.
class RandomParameters {
 public:
  RandomParameters(nn::RecurrentCell& cell, Generator& gen) : params_(cell.named_parameters(false)) {
    for (auto& [name, p] : params_) {
      values_.push_back(p.value());
      grads_.push_back(p.grad());
      p.set_value(uniform(p.shape(), -0.8, 0.8, p.dtype(), &gen));
    }
  }
  ~RandomParameters() {
    for (std::size_t i = 0; i < params_.size(); ++i) {
      params_[i].second.set_value(values_[i]);
      if (grads_[i].defined()) params_[i].second.set_grad(grads_[i]);
      else params_[i].second.zero_grad();
    }
  }
  RandomParameters(const RandomParameters&) = delete;
  RandomParameters& operator=(const RandomParameters&) = delete;

 private:
  std::vector<std::pair<std::string, Variable>> params_;
  std::vector<Tensor> values_, grads_;
};

}  // namespace

static CheckReport confirm_kernel_or_throw(const Kernel& kernel, nn::RecurrentCell& cell, const ParamMap* params,
                                           const CheckOptions& options, const ConfirmShape& shape);

CheckReport check_plugin(const Kernel& kernel, const CheckOptions& options, CellMaker make_cell) {
  if (!make_cell) make_cell = reference_cell(kernel.name);
  KILN_CHECK(make_cell != nullptr, "check_plugin: kernel '{}' (from {}) claims to equal cell '{}', which is not registered; "
             "register the cell (nn::CellRegistry, or KILN_REGISTER_CELLS in the plugin) or pass the cell to check it "
             "against (check_plugin(kernel, options, make_cell))", kernel.name, kernel.origin, kernel.name);
  CheckReport report;
  report.kernel = kernel.name;
  report.plugin = kernel.plugin;
  Worst worst;
  Generator gen(options.seed);
  for (DType dtype : {kFloat32, kFloat64})
    for (std::int64_t batch : {1, 3, 11})      // 11: a full block of rows in the packed GEMM and a tail
      for (std::int64_t hidden : {1, 7, 17, 50})  // 50: more than one packed panel of columns, the last partial
        for (std::int64_t steps : {1, 4})
          for (bool lengths : {false, true})
            for (bool reverse : {false, true})
              for (bool bias : {true, false}) {
                if (lengths && batch == 1) continue;
                const Case c{batch, 5, hidden, steps, lengths, reverse, bias, dtype};
                auto cell = make_cell(c.input, c.hidden, c.bias);
                cell->to(dtype);
                randomize(*cell, dtype, gen);
                run_case(kernel, *cell, c, nullptr, gen, options, report, worst);
              }
  // Note [Realistic sizes]: the shapes users run, in float32: hidden 64, 256 and 1024, input 128, batches of
  // 32 and 64, 50 steps, lengths and both directions, where blocks of steps, row groups and packed panels
  // all come into play (a kernel wrong only from hidden 64 up passes the small grid). float32 rounding grows
  // with the length of the sums and of the recurrence, so the tolerance scales with sqrt(I + H) and with
  // the steps. A few seconds a kernel.
  if (options.realistic) {
    struct Big {
      std::int64_t batch, input, hidden, steps;
      bool lengths, reverse;
    };
    for (const Big& b : {Big{32, 128, 64, 50, true, true}, Big{64, 128, 256, 16, true, false}, Big{32, 128, 1024, 4, false, true}}) {
      const Case c{b.batch, b.input, b.hidden, b.steps, b.lengths, b.reverse, true, kFloat32};
      auto cell = make_cell(c.input, c.hidden, c.bias);
      randomize(*cell, kFloat32, gen, 1.0 / std::sqrt(static_cast<double>(c.hidden)));
      CheckOptions scaled = options;
      scaled.tolerance_f32 = options.tolerance_f32 * std::sqrt(static_cast<double>(c.input + c.hidden) / 64.0) *
                             std::max(1.0, std::sqrt(static_cast<double>(c.steps) / 4.0));
      run_case(kernel, *cell, c, nullptr, gen, scaled, report, worst, "f32 large");
    }
  }
  worst.into(report);
  return report;
}

CheckReport confirm_kernel(const Kernel& kernel, nn::RecurrentCell& cell, const ParamMap* params, const CheckOptions& options,
                           const ConfirmShape& shape) {
  try {
    return confirm_kernel_or_throw(kernel, cell, params, options, shape);
  } catch (const std::exception& e) {  // a kernel that fails is not confirmed: the reason goes in the report
    CheckReport report;
    report.kernel = kernel.name;
    report.plugin = kernel.plugin;
    report.skipped.push_back(fmt::format("it failed: {}", e.what()));
    return report;
  }
}

static CheckReport confirm_kernel_or_throw(const Kernel& kernel, nn::RecurrentCell& cell, const ParamMap* params,
                                           const CheckOptions& options, const ConfirmShape& shape) {
  CheckReport report;
  report.kernel = kernel.name;
  report.plugin = kernel.plugin;
  const auto named = cell.named_parameters(false);
  const DType dtype = named.empty() ? kFloat32 : named.front().second.dtype();
  Generator gen(options.seed + 0x5eed);
  RandomParameters random(cell, gen);
  Worst worst;
  for (bool reverse : shape.directions) {
    const Case c{shape.batch, cell.input_size(), cell.hidden_size(), shape.steps, shape.lengths && shape.batch > 1, reverse,
                 /*bias=*/true, dtype};
    CheckOptions scaled = options;  // float32 rounding grows with the sums and the recurrence (Note [Realistic sizes])
    scaled.tolerance_f32 = options.tolerance_f32 * std::max(1.0, std::sqrt(static_cast<double>(c.input + c.hidden) / 64.0)) *
                           std::max(1.0, std::sqrt(static_cast<double>(c.steps) / 4.0));
    if (!run_case(kernel, cell, c, params, gen, scaled, report, worst)) break;
  }
  worst.into(report);
  return report;
}

std::string CheckReport::first_failure() const {
  if (cases == 0)
    return skipped.empty() ? "no case ran" : skipped.front().rfind("it failed: ", 0) == 0 ? skipped.front() : "it declined: " + skipped.front();
  for (const auto& t : tensors)
    if (!t.passed())
      return fmt::format("{} ({}) differs by {:.2e} (tolerance {:.0e}) at {}", t.tensor, t.dtype, t.worst, t.tolerance, t.worst_case);
  return "";
}

}  // namespace kiln::plugins

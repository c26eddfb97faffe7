#include "plugins/check_plugin.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "autograd/tape.hpp"
#include "layers/recurrent.hpp"
#include "layers/research_cells.hpp"
#include "ops/ops.hpp"
#include "plugins/fused_recurrent.hpp"
#include "tensor/random.hpp"

namespace kiln::plugins {

CellMaker reference_cell(const std::string& name) {
  using namespace nn;
  if (name == "lstm") return [](std::int64_t i, std::int64_t h, bool b) { return std::make_shared<LSTMCell>(LSTMCellOptions(i, h).bias(b)); };
  if (name == "gru") return [](std::int64_t i, std::int64_t h, bool b) { return std::make_shared<GRUCell>(GRUCellOptions(i, h).bias(b)); };
  if (name == "gru_reset_before")
    return [](std::int64_t i, std::int64_t h, bool b) { return std::make_shared<GRUCell>(GRUCellOptions(i, h).bias(b).reset_after(false)); };
  if (name == "rnn_tanh") return [](std::int64_t i, std::int64_t h, bool b) { return std::make_shared<RNNCell>(RNNCellOptions(i, h).bias(b)); };
  if (name == "rnn_relu")
    return [](std::int64_t i, std::int64_t h, bool b) {
      return std::make_shared<RNNCell>(RNNCellOptions(i, h).bias(b).nonlinearity(Nonlinearity::ReLU));
    };
  if (name == "mgu") return [](std::int64_t i, std::int64_t h, bool b) { return std::make_shared<MGUCell>(i, h, b); };
  if (name == "layer_norm_lstm") return [](std::int64_t i, std::int64_t h, bool) { return std::make_shared<LayerNormLSTMCell>(i, h); };
  if (name == "peephole_lstm") return [](std::int64_t i, std::int64_t h, bool b) { return std::make_shared<PeepholeLSTMCell>(i, h, b); };
  return nullptr;
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
  s += fmt::format("  {:<18} {:<8} {:>11} {:>10}  {}\n", "tensor", "dtype", "worst err", "tolerance", "worst case");
  for (const auto& t : tensors)
    s += fmt::format("  {:<18} {:<8} {:>11.2e} {:>10.0e}  {}{}\n", t.tensor, t.dtype, t.worst, t.tolerance, t.worst_case,
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
                 const std::vector<std::int64_t>& lengths, const std::vector<Tensor>& seeds) {
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
    y = run_fused(*kernel, x, {{&cell, &state, c.reverse}}, lengths);
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

}  // namespace

CheckReport check_plugin(const Kernel& kernel, const CheckOptions& options, CellMaker make_cell) {
  if (!make_cell) make_cell = reference_cell(kernel.name);
  KILN_CHECK(make_cell != nullptr, "check_plugin: Kiln knows no generic cell for kernel '{}' (from {}); pass the cell "
             "to check it against (check_plugin(kernel, options, make_cell))", kernel.name, kernel.origin);
  CheckReport report;
  report.kernel = kernel.name;
  report.plugin = kernel.plugin;
  std::map<std::pair<std::string, std::string>, TensorCheck> worst;
  std::vector<std::pair<std::string, std::string>> order;
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
                for (auto& [name, p] : cell->named_parameters(false)) p.set_value(uniform(p.shape(), -0.8, 0.8, dtype, &gen));
                std::vector<std::int64_t> len;
                if (lengths)
                  for (std::int64_t b = 0; b < batch; ++b) len.push_back(b == 0 ? steps : b == 1 ? 0 : std::max<std::int64_t>(1, steps - 2));
                std::string why;
                if (!kernel_supports(kernel, *cell, dtype, steps, batch, len, reverse, &why)) {
                  report.skipped.push_back(fmt::format("{} {}: {}", c.describe(), dtype_name(dtype), why));
                  continue;
                }
                std::vector<Tensor> values{uniform({steps, batch, c.input}, -1, 1, dtype, &gen)};
                std::vector<Tensor> seeds{uniform({steps, batch, hidden}, -1, 1, dtype, &gen)};
                for (std::size_t s = 0; s < cell->state_size(); ++s) {
                  values.push_back(uniform({batch, hidden}, -1, 1, dtype, &gen));
                  seeds.push_back(uniform({batch, hidden}, -1, 1, dtype, &gen));
                }
                const Outcome generic = run_path(nullptr, *cell, values, c, len, seeds);
                const Outcome fused = run_path(&kernel, *cell, values, c, len, seeds);
                ++report.cases;
                const double tol = dtype == kFloat32 ? options.tolerance_f32 : options.tolerance_f64;
                for (std::size_t i = 0; i < generic.tensors.size(); ++i) {
                  const auto key = std::make_pair(generic.tensors[i].first, std::string(dtype_name(dtype)));
                  if (!worst.count(key)) {
                    worst[key] = TensorCheck{key.first, key.second, 0, tol, ""};
                    order.push_back(key);
                  }
                  const double e = relative_error(fused.tensors[i].second, generic.tensors[i].second);
                  TensorCheck& w = worst[key];
                  if (e > w.worst || w.worst_case.empty()) w.worst = e, w.worst_case = c.describe();
                }
              }
  for (const auto& key : order) report.tensors.push_back(worst[key]);
  return report;
}

}  // namespace kiln::plugins

#include "fusion/graph_pass.hpp"

#include <cmath>
#include <map>
#include <vector>

#include <boost/graph/vf2_sub_graph_iso.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "autograd/grad_mode.hpp"
#include "autograd/graph.hpp"
#include "autograd/tape.hpp"
#include "layers/run_cell.hpp"
#include "ops/ops.hpp"
#include "fusion/check_plugin.hpp"
#include "fusion/kernel_choice.hpp"
#include "tensor/random.hpp"

namespace kiln::plugins {
namespace {

DType parameter_dtype(const nn::RecurrentCell& cell) {
  const auto params = cell.named_parameters(false);
  return params.empty() ? kFloat32 : params.front().second.dtype();
}

// A traced step: its graph, what each leaf is ("x", "state0", or a parameter's name) and the vertex
// of each output state.
struct Trace {
  OpGraph graph;
  std::map<OpGraph::vertex_descriptor, std::string> roles;
  std::vector<OpGraph::vertex_descriptor> outputs;
  int ops = 0;
};

Trace trace(nn::RecurrentCell& cell) {
  struct GradOn {  // the step must record, even when called under a NoGradGuard
    bool prev = grad_enabled();
    GradOn() { set_grad_enabled(true); }
    ~GradOn() { set_grad_enabled(prev); }
  } grad_on;
  Generator gen(7);
  const std::int64_t batch = 2;
  const DType dtype = parameter_dtype(cell);
  Variable x(uniform({batch, cell.input_size()}, -1, 1, dtype, &gen), true);
  nn::State state;
  for (std::size_t s = 0; s < cell.state_size(); ++s) state.emplace_back(uniform({batch, cell.hidden_size()}, -1, 1, dtype, &gen), true);
  const nn::State next = cell.step(x, state);
  Trace t;
  t.graph = tape_graph(std::vector<Variable>(next.begin(), next.end()));
  std::map<const void*, std::string> leaves{{x.meta().get(), "x"}};
  for (std::size_t s = 0; s < state.size(); ++s) leaves[state[s].meta().get()] = fmt::format("state{}", s);
  for (const auto& [name, p] : cell.named_parameters(false)) leaves[p.meta().get()] = name;
  for (auto v : boost::make_iterator_range(boost::vertices(t.graph))) {
    const OpVertex& ov = t.graph[v];
    if (ov.kind == VertexKind::Op) ++t.ops;
    if (ov.kind == VertexKind::Leaf) {
      const auto it = leaves.find(ov.leaf);
      t.roles[v] = it != leaves.end() ? it->second : "other";
    }
  }
  for (const Variable& n : next)
    for (auto v : boost::make_iterator_range(boost::vertices(t.graph)))
      if (t.graph[v].kind == VertexKind::Op && t.graph[v].node == n.meta()->node) t.outputs.push_back(v);
  return t;
}

bool is_param(const std::string& role) { return role != "x" && role.rfind("state", 0) != 0 && role != "other"; }

// The first full match of `pattern` in `target`: every op covered, x to x, states to states, outputs
// to outputs, parameters to parameters (returned as kernel parameter -> cell parameter).
bool find_match(const Trace& pattern, const Trace& target, ParamMap* params) {
  if (pattern.ops != target.ops || pattern.outputs.size() != target.outputs.size()) return false;
  auto vertices_equal = [&](OpGraph::vertex_descriptor a, OpGraph::vertex_descriptor b) {
    const OpVertex &p = pattern.graph[a], &q = target.graph[b];
    if (p.kind != q.kind || p.shape != q.shape || p.dtype != q.dtype) return false;
    if (p.kind == VertexKind::Op) return p.op == q.op;
    if (p.kind == VertexKind::Leaf) {
      const std::string &rp = pattern.roles.at(a), &rq = target.roles.at(b);
      return is_param(rp) ? is_param(rq) : rp == rq;
    }
    return true;
  };
  auto edges_equal = [&](OpGraph::edge_descriptor a, OpGraph::edge_descriptor b) {
    return pattern.graph[a].operand == target.graph[b].operand && pattern.graph[a].shape == target.graph[b].shape;
  };
  bool found = false;
  auto callback = [&](auto f, auto) {
    for (std::size_t i = 0; i < pattern.outputs.size(); ++i)
      if (f[pattern.outputs[i]] != target.outputs[i]) return true;  // keep looking
    ParamMap m;
    for (const auto& [v, role] : pattern.roles)
      if (is_param(role)) m[role] = target.roles.at(f[v]);
    *params = m;
    found = true;
    return false;
  };
  boost::vf2_subgraph_iso(pattern.graph, target.graph, callback, boost::vertex_order_by_mult(pattern.graph),
                          boost::edges_equivalent(edges_equal).vertices_equivalent(vertices_equal));
  return found;
}

}  // namespace

CellMatch match_cell(nn::RecurrentCell& cell, const Registry& registry) {
  CellMatch result;
  const Trace target = trace(cell);
  result.ops = target.ops;
  std::vector<std::string> notes;
  const DType dtype = parameter_dtype(cell);
  for (const Kernel* k : registry.kernels()) {
    if (static_cast<std::size_t>(k->abi.state_count) != cell.state_size()) continue;
    const CellMaker make = reference_cell(k->name);
    if (!make) {
      notes.push_back(fmt::format("kernel '{}' ({}) was not searched: no cell '{}' is registered to take its pattern from",
                                  k->name, k->origin, k->name));
      continue;
    }
    for (bool bias : {true, false}) {
      auto reference = make(cell.input_size(), cell.hidden_size(), bias);
      reference->to(dtype);
      const Trace pattern = trace(*reference);
      ParamMap params;
      if (!find_match(pattern, target, &params)) continue;
      if (!parameters_mismatch(*k, cell, &params).empty()) continue;
      const CheckReport confirmed = confirm_kernel(*k, cell, &params);
      if (!confirmed.passed()) {
        notes.push_back(fmt::format("its structure matches kernel '{}' but {} (gate order?)", k->name, confirmed.first_failure()));
        continue;
      }
      std::vector<std::string> pairs;
      for (const auto& [kp, cp] : params) pairs.push_back(kp == cp ? kp : fmt::format("{} <- {}", kp, cp));
      result.kernel = k;
      result.params = params;
      result.report = fmt::format("graph pass: {}'s step ({} ops) matched kernel '{}' from plugin '{}' (parameters {}); "
                                  "it runs fused", cell.type_name(), target.ops, k->name, k->plugin, fmt::join(pairs, ", "));
      return result;
    }
  }
  result.report = fmt::format("graph pass: {}'s step ({} ops) matches no registered kernel{}{}", cell.type_name(), target.ops,
                              notes.empty() ? "" : ": ", fmt::join(notes, "; "));
  return result;
}

}  // namespace kiln::plugins

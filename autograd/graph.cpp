#include "autograd/graph.hpp"
#include "autograd/graph_dot.hpp"

#include <map>
#include <set>
#include <sstream>
#include <vector>

#include <boost/graph/graphviz.hpp>

#include "autograd/tape.hpp"
#include "io/atomic_file.hpp"

namespace kiln {

OpGraph tape_graph(const Variable& root) {
  return root.defined() ? tape_graph(std::vector<Variable>{root}) : tape_graph(std::vector<Variable>{});
}

OpGraph tape_graph(const std::vector<Variable>& roots) {
  const Tape& tape = Tape::current();
  const auto& records = tape.records();
  // Which records to include: all live ones, or those the roots reach through their inputs.
  std::set<std::uint64_t> wanted;
  const bool all = roots.empty();
  if (!all) {
    std::vector<std::uint64_t> stack;
    for (const Variable& root : roots) {
      KILN_CHECK(root.defined() && root.requires_grad() && !root.is_leaf(),
                 "tape_graph: the variable was not produced by a recorded op");
      stack.push_back(root.meta()->node);
    }
    while (!stack.empty()) {
      const std::uint64_t id = stack.back();
      stack.pop_back();
      const Record* r = tape.find(id);
      if (r == nullptr || !wanted.insert(id).second) continue;
      for (const auto& in : r->inputs)
        if (in.meta && in.meta->node != 0) stack.push_back(in.meta->node);
    }
  }
  OpGraph g;
  std::map<const AutogradMeta*, OpGraph::vertex_descriptor> producer;  // output or leaf -> vertex
  for (std::size_t i = 0; i < records.size(); ++i) {
    const Record& r = records[i];
    const std::uint64_t id = tape.first_id() + i;
    if (!r.live() || (!all && wanted.count(id) == 0)) continue;
    const auto v = boost::add_vertex(
        OpVertex{VertexKind::Op, r.op, id, nullptr, r.output->shape, r.output->dtype, tape_scope_name(r.scope), r.attrs, {}}, g);
    for (std::size_t k = 0; k < r.inputs.size(); ++k) {
      const RecordInput& in = r.inputs[k];
      OpGraph::vertex_descriptor src;
      auto it = in.meta ? producer.find(in.meta.get()) : producer.end();
      if (it != producer.end()) {
        src = it->second;
      } else {
        const VertexKind kind = in.meta ? VertexKind::Leaf : VertexKind::Constant;
        src = boost::add_vertex(
            OpVertex{kind, kind == VertexKind::Leaf ? "leaf" : "constant", 0, in.meta.get(), in.shape, in.dtype, "", {}, in.constant}, g);
        if (in.meta) producer[in.meta.get()] = src;
      }
      boost::add_edge(src, v, TensorEdge{in.shape, in.dtype, static_cast<int>(k)}, g);
    }
    producer[r.output.get()] = v;
  }
  return g;
}

std::string to_dot(const OpGraph& g) {
  std::ostringstream os;
  auto vertex_writer = [&g](std::ostream& out, OpGraph::vertex_descriptor v) {
    const OpVertex& p = g[v];
    const char* style = p.kind == VertexKind::Op ? "shape=box" : p.kind == VertexKind::Leaf ? "shape=ellipse" : "shape=ellipse,style=dashed";
    out << "[label=\"" << p.op << "\\n" << p.shape.str() << "\"," << style << "]";
  };
  auto edge_writer = [&g](std::ostream& out, OpGraph::edge_descriptor e) {
    const TensorEdge& p = g[e];
    out << "[label=\"" << p.shape.str() << " #" << p.operand << "\"]";
  };
  auto graph_writer = [&g](std::ostream& out) {
    out << "rankdir=LR;\n";
    std::map<std::string, std::vector<std::size_t>> clusters;  // a node belongs to the first subgraph naming it
    for (std::size_t v = 0; v < boost::num_vertices(g); ++v)
      if (!g[v].scope.empty()) clusters[g[v].scope].push_back(v);
    std::size_t n = 0;
    for (const auto& [name, members] : clusters) {
      out << "subgraph cluster_" << n++ << " {\nlabel=\"" << name << "\";\nstyle=rounded;\n";
      for (std::size_t v : members) out << v << ";\n";
      out << "}\n";
    }
  };
  boost::write_graphviz(os, g, vertex_writer, edge_writer, graph_writer);
  return os.str();
}

void write_dot(const OpGraph& g, const std::string& path) { io::write_file_atomic(path, to_dot(g)); }

std::string graph_dot(const Variable& root) { return to_dot(tape_graph(root)); }

void write_graph_dot(const Variable& root, const std::string& path) { write_dot(tape_graph(root), path); }

}  // namespace kiln

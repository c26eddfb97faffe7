#pragma once
// The recorded tape as a Boost.Graph graph: ops as vertices, tensors as edges (with shapes and the
// operand position they feed). It can be written as Graphviz DOT, and it is what a graph pass
// pattern-matches to swap a fused kernel in for a generic subgraph.
//
//   kiln::OpGraph g = kiln::tape_graph(loss);   // everything loss depends on
//   kiln::write_dot(g, "loss.dot");              // dot -Tpng loss.dot -o loss.png

#include <cstdint>
#include <string>
#include <vector>

#include <boost/graph/adjacency_list.hpp>

#include "autograd/variable.hpp"

namespace kiln {

enum class VertexKind { Op, Leaf, Constant };

struct OpVertex {
  VertexKind kind = VertexKind::Op;
  std::string op;          // op name for Op vertices; "leaf" or "constant" otherwise
  std::uint64_t node = 0;  // tape record id (Op vertices)
  const void* leaf = nullptr;  // the leaf's identity (Leaf vertices): Variable::meta().get()
  Shape shape;             // the tensor this vertex produces
  DType dtype = kFloat32;
  std::string scope;       // the TapeScope the op was recorded in ("" for none)
  std::vector<double> attrs;  // the op's arguments, when recorded under a TraceDetails (Note [Traced steps])
  Tensor value;            // a constant's value, when recorded under a TraceDetails
};

struct TensorEdge {
  Shape shape;
  DType dtype = kFloat32;
  int operand = 0;  // which input of the target op this tensor is
};

using OpGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS, OpVertex, TensorEdge>;

/// The live records of the calling thread's tape that `root` depends on, with their leaf and
/// constant inputs; every live record when `root` is undefined. Vertices are in recording order.
OpGraph tape_graph(const Variable& root = Variable());
/// The records any of `roots` depends on (a step's several outputs, say).
OpGraph tape_graph(const std::vector<Variable>& roots);

/// Graphviz DOT text: ops as boxes, leaves as ellipses, constants dashed; edges labelled by shape; the
/// ops of each tape scope (Note [Tape scopes]: a recurrent layer's time steps) in a box of their own.
std::string to_dot(const OpGraph& g);
/// Writes to_dot(g) to `path` atomically.
void write_dot(const OpGraph& g, const std::string& path);

}  // namespace kiln

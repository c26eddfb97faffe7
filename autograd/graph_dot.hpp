#pragma once
// The graph of what a variable was computed from, as Graphviz DOT: ops as boxes, leaves as ellipses,
// constants dashed, edges labelled with the tensor's shape and the operand it feeds. (The graph itself,
// a Boost.Graph graph the graph pass matches, is internal: autograd/graph.hpp.)
//
//   kiln::write_graph_dot(loss, "loss.dot");   // dot -Tsvg loss.dot -o loss.svg

#include <string>

#include "autograd/variable.hpp"

namespace kiln {

/// DOT text of the live records of this thread's tape that `root` depends on (all of them when root is
/// undefined).
std::string graph_dot(const Variable& root = Variable());
/// Writes graph_dot(root) to `path` atomically.
void write_graph_dot(const Variable& root, const std::string& path);

}  // namespace kiln

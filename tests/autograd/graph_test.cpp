#include <gtest/gtest.h>

#include "autograd/graph.hpp"
#include "autograd/tape.hpp"
#include "io/atomic_file.hpp"
#include "ops/ops.hpp"

namespace kiln {
namespace {

TEST(Graph, VerticesAndEdgesOfASmallExpression) {
  Tape::current().clear();
  Variable x(randn({3, 4}));                     // constant input
  Variable w(randn({4, 5}), true), b(randn({5}), true);
  Variable y = sum(tanh(matmul(x, w) + b));
  Variable unrelated = w * 2.0;                  // recorded, but not part of y's graph
  const OpGraph g = tape_graph(y);
  ASSERT_EQ(boost::num_vertices(g), 7u);         // x, w, b + matmul, add, tanh, sum
  ASSERT_EQ(boost::num_edges(g), 6u);
  std::map<std::string, int> ops;
  for (auto v : boost::make_iterator_range(boost::vertices(g))) ops[g[v].op]++;
  EXPECT_EQ(ops["matmul"], 1);
  EXPECT_EQ(ops["add"], 1);
  EXPECT_EQ(ops["tanh"], 1);
  EXPECT_EQ(ops["sum"], 1);
  EXPECT_EQ(ops["leaf"], 2);
  EXPECT_EQ(ops["constant"], 1);
  EXPECT_EQ(ops.count("mul"), 0u);
  // matmul's operands arrive in order, with their shapes.
  for (auto v : boost::make_iterator_range(boost::vertices(g))) {
    if (g[v].op != "matmul") continue;
    EXPECT_EQ(g[v].shape, (Shape{3, 5}));
    ASSERT_EQ(boost::in_degree(v, g), 2u);
    for (auto e : boost::make_iterator_range(boost::in_edges(v, g))) {
      const auto& src = g[boost::source(e, g)];
      EXPECT_EQ(g[e].operand, src.kind == VertexKind::Constant ? 0 : 1);
      EXPECT_EQ(g[e].shape, g[e].operand == 0 ? (Shape{3, 4}) : (Shape{4, 5}));
    }
  }
  EXPECT_EQ(boost::num_vertices(tape_graph()), 9u);  // the whole tape adds mul and its constant 2.0
  Tape::current().clear();
}

TEST(Graph, DotOutput) {
  Tape::current().clear();
  Variable a(ones({2, 3}), true);
  Variable y = sum(exp(a));
  const std::string dot = to_dot(tape_graph(y));
  EXPECT_NE(dot.find("digraph"), std::string::npos);
  EXPECT_NE(dot.find("exp\\n[2, 3]"), std::string::npos) << dot;
  EXPECT_NE(dot.find("->"), std::string::npos);
  const std::string path = ::testing::TempDir() + "/kiln_graph_test.dot";
  write_dot(tape_graph(y), path);
  EXPECT_EQ(io::read_file(path), dot);
  Tape::current().clear();
}

TEST(AtomicFile, WriteReplacesAndReportsErrors) {
  const std::string path = ::testing::TempDir() + "/kiln_atomic_test.txt";
  io::write_file_atomic(path, "first");
  io::write_file_atomic(path, "second");
  EXPECT_EQ(io::read_file(path), "second");
  EXPECT_THROW(io::write_file_atomic("/nonexistent-dir/x.txt", "x"), Error);
  EXPECT_THROW(io::read_file("/nonexistent-dir/x.txt"), Error);
}

}  // namespace
}  // namespace kiln

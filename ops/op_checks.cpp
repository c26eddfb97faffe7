// The gradient-check table: one or more cases per op in the catalogue (ops/ops.hpp), broadcasting
// included. tests/ops/gradcheck_table_test.cpp runs every case and fails when an op has none;
// `kiln gradcheck` prints the same table for a user's build.

#include "ops/op_checks.hpp"

#include <functional>

#include "ops/ops.hpp"

namespace kiln {
namespace {

using In = std::vector<Variable>;

// Inputs are float64 and drawn from a generator reseeded before each case (run_op_check).
Generator& gen() {
  static thread_local Generator g(0);
  return g;
}
Variable P(const Shape& s) { return Variable(uniform(s, -1, 1, kFloat64, &gen()), true); }
Variable Pos(const Shape& s) { return Variable(uniform(s, 0.5, 2, kFloat64, &gen()), true); }
// A constant in the dtype of `like`, so every case runs in float32 as well as float64.
Variable Const(const Tensor& t, const Variable& like) { return Variable(t.to(like.dtype())); }
Variable Ids(std::vector<std::int64_t> v, const Shape& s = {}) { return Variable(from_data(v, s)); }
Variable Mask(std::vector<bool> v, const Shape& s) { return Variable(from_data(v, s)); }

std::vector<OpCheck> make_checks() {
  std::vector<OpCheck> r;
  auto row = [&r](std::string op, std::string name, std::function<In()> in, GradcheckFn fn) {
    r.push_back({std::move(op), std::move(name), std::move(in), std::move(fn)});
  };
  // Binary, with broadcasting.
  row("add", "add_same", [] { return In{P({2, 3}), P({2, 3})}; }, [](const In& v) { return add(v[0], v[1]); });
  row("add", "add_broadcast", [] { return In{P({2, 1, 3}), P({4, 1})}; }, [](const In& v) { return add(v[0], v[1]); });
  row("add", "add_scalar", [] { return In{P({2, 3})}; }, [](const In& v) { return add(v[0], 1.5); });
  row("sub", "sub_broadcast", [] { return In{P({3}), P({2, 3})}; }, [](const In& v) { return sub(v[0], v[1]); });
  row("sub", "sub_scalar_left", [] { return In{P({2, 3})}; }, [](const In& v) { return sub(2.0, v[0]); });
  row("mul", "mul_broadcast", [] { return In{P({3, 1}), P({1, 4})}; }, [](const In& v) { return mul(v[0], v[1]); });
  row("mul", "mul_scalar", [] { return In{P({2, 3})}; }, [](const In& v) { return mul(v[0], -3.0); });
  row("mul", "mul_same_input", [] { return In{P({5})}; }, [](const In& v) { return mul(v[0], v[0]); });
  row("div", "div_broadcast", [] { return In{P({2, 3}), Pos({3})}; }, [](const In& v) { return div(v[0], v[1]); });
  row("div", "div_scalar_left", [] { return In{Pos({4})}; }, [](const In& v) { return div(2.0, v[0]); });
  row("pow", "pow_tensor", [] { return In{Pos({2, 3}), P({2, 3})}; }, [](const In& v) { return pow(v[0], v[1]); });
  row("pow", "pow_scalar", [] { return In{Pos({2, 3})}; }, [](const In& v) { return pow(v[0], 2.5); });
  row("maximum", "maximum_broadcast", [] { return In{P({2, 3}), P({3})}; }, [](const In& v) { return maximum(v[0], v[1]); });
  row("minimum", "minimum_broadcast", [] { return In{P({2, 3}), P({2, 1})}; }, [](const In& v) { return minimum(v[0], v[1]); });
  row("where", "where_broadcast", [] { return In{Mask({true, false, true}, {3}), P({2, 3}), P({2, 1})}; },
      [](const In& v) { return where(v[0], v[1], v[2]); });
  row("masked_fill", "masked_fill", [] { return In{P({2, 3}), Mask({false, true, false}, {3})}; },
      [](const In& v) { return masked_fill(v[0], v[1], -7.0); });
  // Unary.
  row("neg", "neg", [] { return In{P({4})}; }, [](const In& v) { return neg(v[0]); });
  row("exp", "exp", [] { return In{P({2, 3})}; }, [](const In& v) { return exp(v[0]); });
  row("log", "log", [] { return In{Pos({2, 3})}; }, [](const In& v) { return log(v[0]); });
  row("sqrt", "sqrt", [] { return In{Pos({2, 3})}; }, [](const In& v) { return sqrt(v[0]); });
  row("abs", "abs", [] { return In{P({2, 3})}; }, [](const In& v) { return abs(v[0]); });
  row("tanh", "tanh", [] { return In{P({2, 3})}; }, [](const In& v) { return tanh(v[0]); });
  row("sigmoid", "sigmoid", [] { return In{P({2, 3})}; }, [](const In& v) { return sigmoid(v[0]); });
  row("relu", "relu", [] { return In{P({3, 4})}; }, [](const In& v) { return relu(v[0]); });
  row("gelu", "gelu", [] { return In{P({3, 4})}; }, [](const In& v) { return gelu(mul(v[0], 3.0)); });
  row("clamp", "clamp", [] { return In{P({3, 4})}; }, [](const In& v) { return clamp(v[0], -0.5, 0.5); });
  // Linear algebra.
  row("matmul", "matmul_2d", [] { return In{P({3, 4}), P({4, 5})}; }, [](const In& v) { return matmul(v[0], v[1]); });
  row("matmul", "matmul_batched", [] { return In{P({2, 3, 4}), P({2, 4, 5})}; }, [](const In& v) { return matmul(v[0], v[1]); });
  row("matmul", "matmul_fold_b_2d", [] { return In{P({2, 3, 4}), P({4, 5})}; }, [](const In& v) { return matmul(v[0], v[1]); });
  row("matmul", "matmul_broadcast_a", [] { return In{P({3, 4}), P({2, 4, 5})}; }, [](const In& v) { return matmul(v[0], v[1]); });
  row("matmul", "matmul_broadcast_both", [] { return In{P({2, 1, 3, 4}), P({3, 4, 2})}; }, [](const In& v) { return matmul(v[0], v[1]); });
  row("matmul", "matmul_same_input", [] { return In{P({3, 3})}; }, [](const In& v) { return matmul(v[0], v[0]); });
  row("matmul", "matmul_vector", [] { return In{P({4}), P({4, 3})}; }, [](const In& v) { return matmul(v[0], v[1]); });
  row("matmul", "matmul_dot", [] { return In{P({4}), P({4})}; }, [](const In& v) { return matmul(v[0], v[1]); });
  row("linear", "linear_bias", [] { return In{P({3, 4}), P({5, 4}), P({5})}; }, [](const In& v) { return linear(v[0], v[1], v[2]); });
  row("linear", "linear_3d_no_bias", [] { return In{P({2, 3, 4}), P({5, 4})}; }, [](const In& v) { return linear(v[0], v[1]); });
  // Reductions.
  row("sum", "sum_all", [] { return In{P({2, 3})}; }, [](const In& v) { return sum(v[0]); });
  row("sum", "sum_axis_keepdim", [] { return In{P({2, 3, 4})}; }, [](const In& v) { return sum(v[0], {-1}, true); });
  row("sum", "sum_two_axes", [] { return In{P({2, 3, 4})}; }, [](const In& v) { return sum(v[0], {0, 2}); });
  row("mean", "mean_axis", [] { return In{P({2, 3, 4})}; }, [](const In& v) { return mean(v[0], {1}); });
  row("max", "max_axis", [] { return In{P({3, 5})}; }, [](const In& v) { return max(v[0], {1}); });
  row("max", "max_leading_axes", [] { return In{P({3, 4, 2})}; }, [](const In& v) { return max(v[0], {0, 2}, true); });
  row("max", "max_all", [] { return In{P({3, 4})}; }, [](const In& v) { return max(v[0]); });
  row("logsumexp", "logsumexp_axis", [] { return In{P({3, 4})}; }, [](const In& v) { return logsumexp(v[0], {-1}); });
  row("logsumexp", "logsumexp_first_axis", [] { return In{P({3, 4})}; }, [](const In& v) { return logsumexp(v[0], {0}, true); });
  row("var", "var_unbiased", [] { return In{P({3, 5})}; }, [](const In& v) { return var(v[0], {1}); });
  row("var", "var_biased_all", [] { return In{P({3, 5})}; }, [](const In& v) { return var(v[0], {}, false); });
  // Shape.
  row("reshape", "reshape", [] { return In{P({2, 6})}; }, [](const In& v) { return mul(reshape(v[0], {3, -1}), Const(arange(4), v[0])); });
  row("flatten", "flatten", [] { return In{P({2, 3, 2})}; }, [](const In& v) { return flatten(v[0], 1); });
  row("transpose", "transpose", [] { return In{P({2, 3, 4})}; }, [](const In& v) { return transpose(v[0], 0, 2); });
  row("permute", "permute", [] { return In{P({2, 3, 4})}; }, [](const In& v) { return permute(v[0], {1, 2, 0}); });
  row("squeeze", "squeeze", [] { return In{P({2, 1, 3})}; }, [](const In& v) { return squeeze(v[0]); });
  row("unsqueeze", "unsqueeze", [] { return In{P({2, 3})}; }, [](const In& v) { return mul(unsqueeze(v[0], 1), Const(ones({2, 4, 3}), v[0])); });
  row("concat", "concat", [] { return In{P({2, 3}), P({2, 1}), P({2, 2})}; }, [](const In& v) { return concat({v[0], v[1], v[2]}, 1); });
  row("stack", "stack", [] { return In{P({2, 3}), P({2, 3})}; }, [](const In& v) { return stack({v[0], v[1]}, 1); });
  row("split", "split", [] { return In{P({5, 2})}; }, [](const In& v) { auto p = split(v[0], 2, 0); return concat({p[2], mul(p[0], 3.0)}, 0); });
  row("chunk", "chunk", [] { return In{P({2, 6})}; }, [](const In& v) { auto p = chunk(v[0], 3, 1); return mul(p[1], p[2]); });
  row("slice", "slice_step", [] { return In{P({7, 2})}; }, [](const In& v) { return slice(v[0], 0, 1, -1, 2); });
  row("slice", "slice_and_whole", [] { return In{P({4, 3})}; },
      [](const In& v) { return concat({slice(v[0], 0, 1, 3), exp(v[0]), slice(v[0], 0, 0, 4, 3)}, 0); });
  row("narrow", "narrow", [] { return In{P({2, 5})}; }, [](const In& v) { return narrow(v[0], 1, 1, 3); });
  row("index_select", "index_select_repeats", [] { return In{P({4, 3}), Ids({2, 0, 2})}; }, [](const In& v) { return index_select(v[0], 0, v[1]); });
  row("index_select", "index_select_dim1", [] { return In{P({2, 4}), Ids({3, 1})}; }, [](const In& v) { return index_select(v[0], 1, v[1]); });
  row("gather", "gather", [] { return In{P({3, 4}), Ids({0, 3, 3, 1, 2, 2}, {3, 2})}; }, [](const In& v) { return gather(v[0], 1, v[1]); });
  row("embedding", "embedding", [] { return In{P({5, 3}), Ids({4, 0, 4, 1}, {2, 2})}; }, [](const In& v) { return embedding(v[0], v[1]); });
  row("flip", "flip", [] { return In{P({2, 3, 2})}; }, [](const In& v) { return mul(flip(v[0], {0, 1}), Const(arange(2), v[0])); });
  // Neural-network functions.
  row("softmax", "softmax_last", [] { return In{P({3, 4})}; }, [](const In& v) { return softmax(v[0], -1); });
  row("softmax", "softmax_middle", [] { return In{P({2, 3, 2})}; }, [](const In& v) { return softmax(v[0], 1); });
  row("log_softmax", "log_softmax_first", [] { return In{P({3, 4})}; }, [](const In& v) { return log_softmax(v[0], 0); });
  row("dropout", "dropout", [] { return In{P({4, 5})}; }, [](const In& v) { Generator g(7); return dropout(v[0], 0.3, true, &g); });
  row("layer_norm", "layer_norm_affine", [] { return In{P({3, 5}), P({5}), P({5})}; },
      [](const In& v) { return layer_norm(v[0], {5}, v[1], v[2]); });
  row("layer_norm", "layer_norm_two_dims", [] { return In{P({2, 3, 4})}; }, [](const In& v) { return layer_norm(v[0], {3, 4}); });
  // Losses.
  row("mse_loss", "mse_loss_mean", [] { return In{P({3, 4}), P({3, 4})}; }, [](const In& v) { return mse_loss(v[0], v[1]); });
  row("binary_cross_entropy_with_logits", "bce_with_logits_sum", [] { return In{P({3, 4}), Variable(rand({3, 4}, kFloat64, &gen()), true)}; },
      [](const In& v) { return binary_cross_entropy_with_logits(mul(v[0], 4.0), v[1], Reduction::Sum); });
  row("nll_loss", "nll_loss_ignore_index", [] { return In{P({4, 3}), Ids({2, -100, 0, 1})}; },
      [](const In& v) { return nll_loss(v[0], v[1]); });
  row("nll_loss", "nll_loss_none", [] { return In{P({3, 3}), Ids({2, 1, 1})}; },
      [](const In& v) { return nll_loss(v[0], v[1], -100, Reduction::None); });
  row("cross_entropy", "cross_entropy", [] { return In{P({4, 5}), Ids({4, 0, 2, 2})}; },
      [](const In& v) { return cross_entropy(v[0], v[1]); });
  row("cross_entropy", "cross_entropy_sequence", [] { return In{P({2, 3, 4}), Ids({0, 1, 2, 1, 1, -100, 2, 0}, {2, 4})}; },
      [](const In& v) { return cross_entropy(v[0], v[1], -100, Reduction::Sum); });
  return r;
}

}  // namespace

const std::vector<OpCheck>& op_checks() {
  static const std::vector<OpCheck> checks = make_checks();
  return checks;
}

GradcheckResult run_op_check(const OpCheck& check, const GradcheckOptions& options) {
  gen().seed(std::hash<std::string>{}(check.name));
  return gradcheck(check.fn, check.inputs(), options);
}

}  // namespace kiln

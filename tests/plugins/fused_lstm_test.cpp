// The fused LSTM kernel equals the generic graph: outputs, final states and every gradient, over a grid
// of shapes, lengths, both directions and both dtypes. A deliberately wrong input is caught.

#include <gtest/gtest.h>

#include "layers/recurrent.hpp"
#include "ops/ops.hpp"
#include "plugins/builtin/fused_lstm.hpp"

namespace kiln::plugins {
namespace {

struct Case {
  DType dtype;
  std::int64_t batch, in, hidden, steps;
  bool reverse, lengths;
};

std::string name_of(const Case& c) {
  return fmt::format("{}_b{}_i{}_h{}_t{}{}{}", dtype_name(c.dtype), c.batch, c.in, c.hidden, c.steps,
                     c.reverse ? "_reverse" : "", c.lengths ? "_lengths" : "");
}
void PrintTo(const Case& c, std::ostream* os) { *os << name_of(c); }

std::vector<Case> grid() {
  std::vector<Case> out;
  for (DType dt : {kFloat64, kFloat32})
    for (std::int64_t b : {1, 3})
      for (std::int64_t h : {1, 7, 17})
        for (std::int64_t t : {1, 4})
          for (bool rev : {false, true})
            for (bool len : {false, true})
              if (!len || b > 1) out.push_back({dt, b, h == 7 ? 5 : 1, h, t, rev, len});
  return out;
}

class FusedLSTM : public ::testing::TestWithParam<Case> {};

double rel_error(const Tensor& a, const Tensor& b) {
  double scale = 1e-30;
  for (double v : b.to_vector()) scale = std::max(scale, std::abs(v));
  return max_abs_diff(a.to(kFloat64), b.to(kFloat64)) / scale;
}

TEST_P(FusedLSTM, MatchesTheGenericGraph) {
  const Case c = GetParam();
  manual_seed(17);
  nn::LSTM generic(nn::LSTMOptions(c.in, c.hidden).bidirectional(c.reverse));
  generic.to(c.dtype);
  const int d = c.reverse ? 1 : 0;
  std::vector<std::int64_t> lengths;
  if (c.lengths)
    for (std::int64_t b = 0; b < c.batch; ++b) lengths.push_back((b * 3 + 1) % (c.steps + 1));
  const Variable lengths_var = c.lengths ? Variable(from_data(lengths)) : Variable();
  Generator g(5);
  const Tensor x = normal({c.steps, c.batch, c.in}, 0, 1, c.dtype, &g);
  const Tensor h0 = normal({c.batch, c.hidden}, 0, 1, c.dtype, &g), c0 = normal({c.batch, c.hidden}, 0, 1, c.dtype, &g);
  const Tensor r_out = normal({c.steps, c.batch, c.hidden}, 0, 1, c.dtype, &g);
  const Tensor r_h = normal({c.batch, c.hidden}, 0, 1, c.dtype, &g), r_c = normal({c.batch, c.hidden}, 0, 1, c.dtype, &g);
  const std::string sfx = fmt::format("_l0{}", c.reverse ? "_reverse" : "");
  const std::vector<std::string> pnames{"weight_ih" + sfx, "weight_hh" + sfx, "bias_ih" + sfx, "bias_hh" + sfx};

  // Generic: the layer's direction d, with the other direction (if any) fed zeros.
  Variable gx(x, true), gh(h0, true), gc(c0, true);
  const int dirs = c.reverse ? 2 : 1;
  auto place = [&](const Variable& s) {
    if (dirs == 1) return unsqueeze(s, 0);
    const Variable other(zeros({1, c.batch, c.hidden}, c.dtype));
    return d == 0 ? concat({unsqueeze(s, 0), other}, 0) : concat({other, unsqueeze(s, 0)}, 0);
  };
  const auto gr = generic.forward(gx, {place(gh), place(gc)}, lengths_var);
  const Variable g_out = narrow(gr.output, 2, d * c.hidden, c.hidden);
  const Variable g_h = squeeze(narrow(gr.h_n, 0, d, 1), 0), g_c = squeeze(narrow(gr.c_n, 0, d, 1), 0);
  (sum(g_out * Variable(r_out)) + sum(g_h * Variable(r_h)) + sum(g_c * Variable(r_c))).backward();

  // Fused, on copies of the same parameters.
  std::vector<Variable> p;
  for (const auto& n : pnames) p.emplace_back(generic.parameter(n).value().clone(), true);
  Variable fx(x, true), fh(h0, true), fc(c0, true);
  const FusedLSTMResult fr = fused_lstm(fx, fh, fc, p[0], p[1], p[2], p[3], lengths, c.reverse);
  (sum(fr.output * Variable(r_out)) + sum(fr.h_n * Variable(r_h)) + sum(fr.c_n * Variable(r_c))).backward();

  const double tol = c.dtype == kFloat64 ? 1e-12 : 2e-5;
  EXPECT_LE(rel_error(fr.output.value(), g_out.value()), tol) << "output";
  EXPECT_LE(rel_error(fr.h_n.value(), g_h.value()), tol) << "h_n";
  EXPECT_LE(rel_error(fr.c_n.value(), g_c.value()), tol) << "c_n";
  EXPECT_LE(rel_error(fx.grad(), gx.grad()), tol) << "grad x";
  EXPECT_LE(rel_error(fh.grad(), gh.grad()), tol) << "grad h0";
  EXPECT_LE(rel_error(fc.grad(), gc.grad()), tol) << "grad c0";
  for (std::size_t k = 0; k < pnames.size(); ++k)
    EXPECT_LE(rel_error(p[k].grad(), generic.parameter(pnames[k]).grad()), tol) << "grad " << pnames[k];
}

INSTANTIATE_TEST_SUITE_P(Grid, FusedLSTM, ::testing::ValuesIn(grid()),
                         [](const ::testing::TestParamInfo<Case>& i) { return name_of(i.param); });

TEST(FusedLSTMErrors, ShapesAreChecked) {
  const Variable x(zeros({3, 2, 4})), h(zeros({2, 5})), w_ih(zeros({20, 4})), w_hh(zeros({20, 5}));
  EXPECT_THROW(fused_lstm(x, h, h, w_ih, Variable(zeros({20, 4})), Variable(), Variable(), {}, false), Error);
  EXPECT_THROW(fused_lstm(x, Variable(zeros({3, 5})), h, w_ih, w_hh, Variable(), Variable(), {}, false), Error);
  EXPECT_THROW(fused_lstm(x, h, h, w_ih, w_hh, Variable(), Variable(), {1, 7}, false), Error);
  EXPECT_NO_THROW(fused_lstm(x, h, h, w_ih, w_hh, Variable(), Variable(), {3, 0}, true));
}

}  // namespace
}  // namespace kiln::plugins

// The skeleton's kernels called through kiln/plugin.h directly, as a host other than Kiln's layers
// might: y and dy laid out with strides of their own (KILN_KERNEL_STRIDED_SEQUENCES) give the same
// outputs and gradients as contiguous ones — including backward's reading of h from y, whose rows then
// do not lie evenly apart (Note [h from y]).

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "plugins/builtin/builtin.hpp"
#include "plugins/host.hpp"

namespace kiln::plugins {
namespace {

kiln_tensor tensor(double* data, std::vector<std::int64_t> shape, std::vector<std::int64_t> strides = {}) {
  kiln_tensor t{};
  t.data = data;
  t.dtype = KILN_FLOAT64;
  t.rank = static_cast<std::int32_t>(shape.size());
  std::int64_t stride = 1;
  for (int i = t.rank - 1; i >= 0; --i) {
    t.shape[i] = shape[static_cast<std::size_t>(i)];
    t.strides[i] = strides.empty() ? stride : strides[static_cast<std::size_t>(i)];
    stride *= t.shape[i];
  }
  return t;
}

struct Gradients {
  std::vector<double> y, dx, dh0, dparams;
};

// Forward and backward of `k` with y and dy placed `pad` elements apart between rows and steps.
Gradients run(const kiln_recurrent_kernel& k, std::int64_t gates, bool reverse, const std::vector<std::int64_t>& lengths,
              std::int64_t pad) {
  const std::int64_t T = 7, B = 5, I = 3, H = 4, GH = gates * H, S = k.state_count;
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(-0.8, 0.8);
  auto random = [&](std::int64_t n) {
    std::vector<double> v(static_cast<std::size_t>(n));
    for (double& e : v) e = u(rng);
    return v;
  };
  std::vector<double> x = random(T * B * I), h0 = random(S * B * H), dfinal = random(S * B * H);
  std::vector<double> params[4] = {random(GH * I), random(GH * H), random(GH), random(GH)};
  const std::int64_t ld = H + pad, ls = B * ld + pad;  // y's row and step strides
  // The gaps between rows hold NaN: a kernel that read them would spread it into every gradient.
  const double nan = std::nan("");
  std::vector<double> y(static_cast<std::size_t>(T * ls), nan), dy(y.size(), nan), finals(static_cast<std::size_t>(S * B * H));
  const std::vector<double> dy_rows = random(T * B * H);
  for (std::int64_t r = 0; r < T * B; ++r)
    for (std::int64_t j = 0; j < H; ++j) dy[static_cast<std::size_t>(r / B * ls + r % B * ld + j)] = dy_rows[static_cast<std::size_t>(r * H + j)];
  kiln_recurrent_problem p{};
  p.dtype = KILN_FLOAT64, p.reverse = reverse, p.has_bias = 1, p.phase = KILN_FORWARD;
  p.steps = T, p.batch = B, p.input_size = I, p.hidden_size = H;
  p.lengths = lengths.empty() ? nullptr : lengths.data();
  const kiln_tensor xt = tensor(x.data(), {T, B, I});
  kiln_tensor states[2], fin[2], dfin[2];
  for (std::int64_t s = 0; s < S; ++s) {
    states[s] = tensor(h0.data() + s * B * H, {B, H});
    fin[s] = tensor(finals.data() + s * B * H, {B, H});
    dfin[s] = tensor(dfinal.data() + s * B * H, {B, H});
  }
  const kiln_tensor pt[4] = {tensor(params[0].data(), {GH, I}), tensor(params[1].data(), {GH, H}), tensor(params[2].data(), {GH}),
                             tensor(params[3].data(), {GH})};
  kiln_tensor yt = tensor(y.data(), {T, B, H}, {ls, ld, 1}), dyt = tensor(dy.data(), {T, B, H}, {ls, ld, 1});
  std::vector<double> saved(k.saved_bytes(&p) / 8 + 1), work(k.work_bytes(&p) / 8 + 1);
  char err[512] = {};
  EXPECT_EQ(k.forward(&host_services(), &p, &xt, states, pt, &yt, fin, saved.data(), work.data(), err, sizeof err), 0) << err;
  Gradients g;
  g.dx.resize(static_cast<std::size_t>(T * B * I));
  g.dh0.resize(static_cast<std::size_t>(S * B * H));
  g.dparams.resize(static_cast<std::size_t>(GH * (I + H) + 2 * GH));
  kiln_tensor dxt = tensor(g.dx.data(), {T, B, I}), dst[2], dpt[4];
  for (std::int64_t s = 0; s < S; ++s) dst[s] = tensor(g.dh0.data() + s * B * H, {B, H});
  double* dp = g.dparams.data();
  dpt[0] = tensor(dp, {GH, I}), dpt[1] = tensor(dp + GH * I, {GH, H}), dpt[2] = tensor(dp + GH * (I + H), {GH});
  dpt[3] = tensor(dp + GH * (I + H) + GH, {GH});
  p.phase = KILN_LAST_BACKWARD;
  p.y = &yt;
  work.assign(k.work_bytes(&p) / 8 + 1, 0.0);
  EXPECT_EQ(k.backward(&host_services(), &p, &xt, states, pt, saved.data(), &dyt, dfin, &dxt, dst, dpt, work.data(), err, sizeof err), 0)
      << err;
  for (std::int64_t t = 0; t < T; ++t)  // y as [T, B, H]; its gaps untouched
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t j = 0; j < ld; ++j) {
        const double v = y[static_cast<std::size_t>(t * ls + b * ld + j)];
        if (j < H)
          g.y.push_back(v);
        else
          EXPECT_TRUE(std::isnan(v)) << "a gap in y was written";
      }
  return g;
}

void expect_near(const std::vector<double>& a, const std::vector<double>& b, const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(a[i] - b[i]);
    if (std::isnan(d) || d > worst) worst = d;  // NaN stays (std::max would drop it)
  }
  EXPECT_LT(worst, 1e-13) << what;
}

TEST(RecurrentAbi, StridedOutputsGiveTheSameResultsAsContiguousOnes) {
  struct Case {
    const kiln_recurrent_kernel& kernel;
    std::int64_t gates;
  };
  const Case cases[] = {{builtin::lstm_kernel(), 4}, {builtin::gru_kernel(), 3}, {builtin::gru_reset_before_kernel(), 3},
                        {builtin::rnn_tanh_kernel(), 1}};
  for (const Case& c : cases)
    for (bool reverse : {false, true})
      for (const std::vector<std::int64_t>& lengths : {std::vector<std::int64_t>{}, std::vector<std::int64_t>{7, 3, 0, 5, 1}}) {
        SCOPED_TRACE(std::string(c.kernel.name) + (reverse ? " reverse" : " forward") + (lengths.empty() ? "" : " lengths"));
        const Gradients plain = run(c.kernel, c.gates, reverse, lengths, 0), padded = run(c.kernel, c.gates, reverse, lengths, 3);
        expect_near(plain.y, padded.y, "y");
        expect_near(plain.dx, padded.dx, "dx");
        expect_near(plain.dh0, padded.dh0, "d states");
        expect_near(plain.dparams, padded.dparams, "d params");
        double norm = 0;
        for (double v : plain.dparams) norm += std::abs(v);
        EXPECT_GT(norm, 1.0);  // the gradients are not trivially zero
      }
}

}  // namespace
}  // namespace kiln::plugins

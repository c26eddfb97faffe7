// The non-recording math kernels against index-by-index loops, and tensor views.

#include <gtest/gtest.h>

#include "autograd/variable.hpp"
#include "ops/ops.hpp"
#include "tensor/math.hpp"
#include "tensor/random.hpp"
#include "tensor/tensor.hpp"

namespace kiln {
namespace {

// Row-major multi-index of flat position i in `shape`.
std::vector<std::int64_t> unravel(std::int64_t i, const Shape& shape) {
  std::vector<std::int64_t> idx(static_cast<std::size_t>(shape.rank()));
  for (int d = shape.rank() - 1; d >= 0; --d) {
    idx[static_cast<std::size_t>(d)] = i % shape[d];
    i /= shape[d];
  }
  return idx;
}

std::int64_t ravel(const std::vector<std::int64_t>& idx, const Shape& shape) {
  std::int64_t at = 0;
  for (int d = 0; d < shape.rank(); ++d) at = at * shape[d] + idx[static_cast<std::size_t>(d)];
  return at;
}

TEST(Math, ExpandFollowsTheBroadcastIndexRule) {
  const std::vector<std::pair<Shape, Shape>> cases{
      {{3, 1, 4}, {2, 3, 5, 4}}, {{1}, {7}}, {{}, {2, 3}}, {{4, 1}, {4, 6}}, {{1, 6}, {4, 6}},
      {{5}, {3, 2, 5}},          {{2, 1, 1}, {2, 3, 4}}, {{1, 3, 1}, {2, 3, 2}}, {{3, 1}, {1, 3, 17}}};
  for (DType dtype : {kFloat32, kFloat64, kInt64}) {
    for (const auto& [from, to] : cases) {
      const Tensor t = arange(static_cast<double>(from.numel()), kFloat64).reshape(from.vec()).to(dtype);
      const Tensor e = math::expand(t, to);
      ASSERT_EQ(e.shape(), to);
      const std::vector<double> got = e.to_vector(), src = t.to_vector();
      const int lead = to.rank() - from.rank();
      for (std::int64_t i = 0; i < to.numel(); ++i) {
        const auto idx = unravel(i, to);
        std::vector<std::int64_t> sidx;
        for (int d = 0; d < from.rank(); ++d) sidx.push_back(from[d] == 1 ? 0 : idx[static_cast<std::size_t>(d + lead)]);
        ASSERT_EQ(got[static_cast<std::size_t>(i)], src[static_cast<std::size_t>(ravel(sidx, from))])
            << from.str() << " -> " << to.str() << " at " << i;
      }
    }
  }
  EXPECT_THROW(math::expand(zeros({2, 3}), {4, 3}), Error);
}

TEST(Math, SumDimsOverEverySubsetOfAxes) {
  manual_seed(3);
  const Shape shape{3, 4, 5, 6};
  const Tensor t = randn(shape, kFloat64);
  const std::vector<double> v = t.to_vector();
  for (int mask = 0; mask < 16; ++mask) {
    std::vector<bool> reduce(4);
    Shape kept = shape;
    for (int d = 0; d < 4; ++d) {
      reduce[static_cast<std::size_t>(d)] = (mask >> d) & 1;
      if (reduce[static_cast<std::size_t>(d)]) kept[d] = 1;
    }
    std::vector<double> want(static_cast<std::size_t>(kept.numel()), 0.0);
    for (std::int64_t i = 0; i < shape.numel(); ++i) {
      auto idx = unravel(i, shape);
      for (int d = 0; d < 4; ++d)
        if (reduce[static_cast<std::size_t>(d)]) idx[static_cast<std::size_t>(d)] = 0;
      want[static_cast<std::size_t>(ravel(idx, kept))] += v[static_cast<std::size_t>(i)];
    }
    const Tensor got = math::sum_dims(t, reduce);
    ASSERT_EQ(got.shape(), kept) << "mask " << mask;
    const std::vector<double> g = got.to_vector();
    for (std::size_t k = 0; k < want.size(); ++k) EXPECT_NEAR(g[k], want[k], 1e-12) << "mask " << mask << " at " << k;
  }
}

TEST(Math, SumDimsOfALongFloatRunIsAccurateAndRepeatable) {
  const Tensor t = full({100003}, 0.1, kFloat32);  // batches, four accumulators and an odd tail
  const double s = math::sum_dims(t, {true}).item();
  EXPECT_NEAR(s, 100003 * 0.1, 1e-3 * 100003 * 0.1);
  EXPECT_EQ(math::sum_dims(t, {true}).item(), s);
  EXPECT_EQ(math::sum_dims(zeros({0, 3}), {true, false}).to_vector(), (std::vector<double>{0, 0, 0}));
  EXPECT_EQ(math::sum_dims(scalar_tensor(2.5), {}).item(), 2.5);
}

TEST(Math, AddSliceContiguousAndStrided) {
  Tensor t = zeros({2, 6}, kFloat64);
  math::add_slice_(t, ones({2, 3}, kFloat64), 1, 1, 1);
  math::add_slice_(t, full({2, 2}, 10, kFloat64), 1, 0, 3);
  EXPECT_EQ(t.to_vector(), (std::vector<double>{10, 1, 1, 11, 0, 0, 10, 1, 1, 11, 0, 0}));
  EXPECT_THROW(math::add_slice_(t, ones({2, 3}, kFloat64), 1, 4, 1), Error);
}

TEST(Views, ViewRangeSharesStorage) {
  Tensor t = arange(12, kFloat32).reshape({3, 4});
  Tensor v = t.view_range(4, {2, 2});
  EXPECT_EQ(v.to_vector(), (std::vector<double>{4, 5, 6, 7}));
  EXPECT_EQ(v.use_count(), 2);
  EXPECT_FALSE(v.is_same(t));
  EXPECT_TRUE(v.reshape({4}).is_same(v));
  v.fill_(-1);
  EXPECT_EQ(t.to_vector()[5], -1.0);
  EXPECT_EQ(v.clone().to_vector(), (std::vector<double>{-1, -1, -1, -1}));
  EXPECT_EQ(v.view_range(3, {1}).item(), -1.0);
  try {
    t.view_range(10, {3});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("view_range: elements [10, 13)"), std::string::npos) << e.what();
  }
}

TEST(Views, NarrowOfAContiguousRangeIsAViewAndDifferentiates) {
  Variable x(arange(24, kFloat64).reshape({4, 3, 2}), true);
  Variable y = narrow(x, 0, 1, 2);  // rows 1 and 2: one contiguous range
  EXPECT_EQ(static_cast<const char*>(y.value().raw_data()) - static_cast<const char*>(x.value().raw_data()),
            static_cast<std::ptrdiff_t>(6 * sizeof(double)));
  Variable z = slice(x, 1, 0, 3, 2);  // strided along an inner dim: a copy
  EXPECT_EQ(z.value().use_count(), 1);
  (sum(mul(y, y)) + sum(z)).backward();
  std::vector<double> want(24, 0.0);
  for (int i = 6; i < 18; ++i) want[static_cast<std::size_t>(i)] = 2.0 * i;
  for (int r = 0; r < 4; ++r)
    for (int c : {0, 2})
      for (int k = 0; k < 2; ++k) want[static_cast<std::size_t>(r * 6 + c * 2 + k)] += 1.0;
  EXPECT_EQ(x.grad().to_vector(), want);
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

// Note [In place without a temporary]: add_ and axpy_ write straight into a; b may be a itself or a
// view overlapping it at another offset, and the result is as if b had been read before any write.
TEST(MathInPlace, AxpyReadsAnOverlappingOperandAsItWas) {
  Tensor a = from_data(std::vector<double>{1, 2, 3, 4, 5, 6}, {6});
  math::add_(a, a);
  EXPECT_EQ(a.to_vector(), (std::vector<double>{2, 4, 6, 8, 10, 12}));

  Tensor base = from_data(std::vector<double>{1, 2, 3, 4, 5, 6}, {6});
  Tensor head = base.view_range(0, {4}), tail = base.view_range(2, {4});  // tail starts inside head
  math::axpy_(head, 10.0, tail);  // head += 10 * {3, 4, 5, 6}, read before head's writes reach them
  EXPECT_EQ(base.to_vector(), (std::vector<double>{31, 42, 53, 64, 5, 6}));
  Tensor base2 = from_data(std::vector<double>{1, 2, 3, 4, 5, 6}, {6});
  Tensor later = base2.view_range(2, {4}), earlier = base2.view_range(0, {4});
  math::add_(later, earlier);  // {3, 4, 5, 6} += {1, 2, 3, 4}
  EXPECT_EQ(base2.to_vector(), (std::vector<double>{1, 2, 4, 6, 8, 10}));
}

}  // namespace
}  // namespace kiln

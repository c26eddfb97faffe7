#include <gtest/gtest.h>

#include <cmath>

#include "tensor/math.hpp"
#include "tensor/tensor.hpp"

namespace kiln {
namespace {

TEST(Tensor, CreationAndQueries) {
  Tensor z = zeros({2, 3});
  EXPECT_EQ(z.dtype(), kFloat32);
  EXPECT_EQ(z.shape(), (Shape{2, 3}));
  EXPECT_EQ(z.numel(), 6);
  EXPECT_EQ(z.dim(), 2);
  EXPECT_EQ(z.size(-1), 3);
  EXPECT_EQ(z.to_vector(), std::vector<double>(6, 0.0));
  EXPECT_EQ(ones({2}, kFloat64).to_vector(), (std::vector<double>{1, 1}));
  EXPECT_EQ(full({2}, 7.5).to_vector(), (std::vector<double>{7.5, 7.5}));
  EXPECT_EQ(arange(0, 1, 0.25, kFloat64).to_vector(), (std::vector<double>{0, 0.25, 0.5, 0.75}));
  EXPECT_EQ(arange(3, kInt64).to_vector(), (std::vector<double>{0, 1, 2}));
  EXPECT_DOUBLE_EQ(scalar_tensor(2.5, kFloat64).item(), 2.5);
  EXPECT_EQ(scalar_tensor(1).dim(), 0);
}

// Note [Float to integer]: NaN, infinities and numbers beyond int64 are refused, not made into INT64_MIN.
TEST(Tensor, ConvertingToInt64RefusesWhatNoInt64Holds) {
  const Tensor ok = from_data(std::vector<double>{-3.7, 0, 9.2e18}, {3});
  EXPECT_EQ(ok.to(kInt64).to_vector(), (std::vector<double>{-3, 0, 9.2e18}));
  for (double bad : {std::nan(""), HUGE_VAL, -HUGE_VAL, 9.3e18, -1e300}) {
    const Tensor t = from_data(std::vector<double>{1, bad}, {2});
    try {
      t.to(kInt64);
      ADD_FAILURE() << bad << " was converted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("to: element 1 is"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("which is no int64"), std::string::npos) << e.what();
    }
    EXPECT_THROW(Tensor({2}, kInt64).fill_(bad), Error);
  }
  EXPECT_EQ(from_data(std::vector<float>{2.5f}, {1}).to(kInt64).item(), 2);
}

TEST(Tensor, FromDataChecksSize) {
  Tensor t = from_data({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, {2, 3});
  EXPECT_EQ(t.data<float>()[4], 5.f);
  EXPECT_THROW(from_data({1.f, 2.f}, {3}), Error);
  EXPECT_EQ(from_data(std::vector<std::int64_t>{4, 5}).dtype(), kInt64);
  EXPECT_EQ(from_data(std::vector<bool>{true, false}).dtype(), kBool);
}

TEST(Tensor, TypedAccessChecksDtype) {
  Tensor t = zeros({2});
  EXPECT_THROW(t.data<double>(), Error);
  EXPECT_THROW(Tensor().data<float>(), Error);
}

TEST(Tensor, ItemNeedsOneElement) {
  EXPECT_THROW(zeros({2}).item(), Error);
  EXPECT_DOUBLE_EQ(full({1, 1}, 3).item(), 3.0);
}

TEST(Tensor, ReshapeSharesStorageAndInfers) {
  Tensor t = arange(6);
  Tensor r = t.reshape({2, -1});
  EXPECT_EQ(r.shape(), (Shape{2, 3}));
  EXPECT_TRUE(r.is_same(t));
  EXPECT_THROW(t.reshape({4, -1}), Error);
  EXPECT_THROW(t.reshape({-1, -1}), Error);
  EXPECT_THROW(t.reshape({5}), Error);
}

TEST(Tensor, CloneAndConvert) {
  Tensor t = from_data({1.5f, -2.5f});
  Tensor c = t.clone();
  c.fill_(0);
  EXPECT_EQ(t.to_vector(), (std::vector<double>{1.5, -2.5}));
  EXPECT_EQ(t.to(kFloat64).dtype(), kFloat64);
  EXPECT_EQ(t.to(kInt64).to_vector(), (std::vector<double>{1, -2}));
}

TEST(Tensor, PrintsValuesDtypeAndShape) {
  const std::string s = to_string(from_data({1.f, 2.f, 3.f, 4.f}, {2, 2}));
  EXPECT_NE(s.find("float32 [2, 2]"), std::string::npos) << s;
  EXPECT_NE(s.find("4"), std::string::npos) << s;
  EXPECT_NE(to_string(Tensor()).find("undefined"), std::string::npos);
}

TEST(Tensor, NegativeDimensionIsRejected) { EXPECT_THROW(zeros({2, -1}), Error); }

TEST(Tensor, Comparisons) {
  Tensor a = from_data({1.0, 2.0});
  Tensor b = from_data({1.0, 2.0 + 1e-9});
  EXPECT_FALSE(equal(a, b));
  EXPECT_TRUE(allclose(a, b));
  EXPECT_NEAR(max_abs_diff(a, b), 1e-9, 1e-12);
}

TEST(Shape, BroadcastingRules) {
  EXPECT_EQ(broadcast_shapes({2, 1, 3}, {4, 1}, "t"), (Shape{2, 4, 3}));
  EXPECT_EQ(broadcast_shapes({}, {3}, "t"), (Shape{3}));
  try {
    broadcast_shapes({2, 3}, {4, 3}, "add");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("add: shapes [2, 3] and [4, 3]"), std::string::npos) << e.what();
  }
}

TEST(Math, SumToReversesBroadcast) {
  Tensor g = ones({2, 3, 4}, kFloat64);
  EXPECT_EQ(math::sum_to(g, {3, 1}).to_vector(), (std::vector<double>{8, 8, 8}));
  EXPECT_EQ(math::sum_to(g, {}).item(), 24.0);
}

TEST(Math, AllFinite) {
  EXPECT_TRUE(math::all_finite(ones({3})));
  EXPECT_FALSE(math::all_finite(from_data({1.0, std::nan("")})));
  EXPECT_FALSE(math::all_finite(from_data({1.0f, INFINITY})));
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

// Note [Addressable shapes]: shape products never overflow, and memory that cannot be had is an error
// naming the size, not std::bad_alloc.
TEST(Shapes, ProductsNeverOverflow) {
  const std::int64_t big = std::int64_t{1} << 40;
  EXPECT_THROW(zeros({big, big}), Error);
  EXPECT_THROW(zeros({0, std::int64_t{1} << 62, std::int64_t{1} << 62}), Error);  // a zero dim hides nothing
  EXPECT_THROW(zeros({4}).reshape({(std::int64_t{1} << 62) + 1, 4}), Error);
  EXPECT_THROW(zeros({0}).reshape({0, std::int64_t{1} << 62, 4}), Error);
  EXPECT_EQ(zeros({0, 1 << 20, 1 << 20}).numel(), 0);  // large but addressable: fine
  try {
    zeros({std::int64_t{1} << 29, std::int64_t{1} << 29});  // 2^58 floats: addressable, never allocatable
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("out of memory: a tensor of 1152921504606846976 bytes"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kiln

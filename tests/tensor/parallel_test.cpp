#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "ops/gemm.hpp"
#include "tensor/error.hpp"
#include "tensor/parallel.hpp"
#include "tensor/random.hpp"
#include "tensor/tensor.hpp"

namespace kiln {
namespace {

struct Threads {
  explicit Threads(int n) : before(num_threads()) { set_num_threads(n); }
  ~Threads() { set_num_threads(before); }
  int before;
};

TEST(Parallel, CoversTheRangeOnceForEachThreadCount) {
  for (int threads : {1, 2, 3}) {
    Threads t(threads);
    for (std::int64_t n : {0, 1, 5, 64, 1001}) {
      std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
      parallel_for(n, 7, [&](std::int64_t b, std::int64_t e) {
        EXPECT_TRUE(in_parallel_region() || threads == 1 || n <= 7);
        for (std::int64_t i = b; i < e; ++i) ++hits[static_cast<std::size_t>(i)];
      });
      for (const auto& h : hits) EXPECT_EQ(h.load(), 1) << "threads " << threads << " n " << n;
    }
  }
}

TEST(Parallel, RethrowsAndNestedCallsRunInline) {
  Threads t(2);
  EXPECT_THROW(parallel_for(100, 1, [](std::int64_t b, std::int64_t) {
                 if (b > 0) throw Error("chunk failed");
               }),
               Error);
  std::atomic<int> inner{0};
  parallel_for(2, 1, [&](std::int64_t, std::int64_t) { parallel_for(10, 1, [&](std::int64_t b, std::int64_t e) { inner += int(e - b); }); });
  EXPECT_EQ(inner.load(), 20);
  parallel_for(4, 1, [](std::int64_t, std::int64_t) {});  // the pool still works after an exception
}

// A GEMM split across threads (Note [Own the threading]) equals the single-threaded one, for every
// transpose combination and both split directions.
TEST(Parallel, SplitGemmMatchesOneThread) {
  Generator gen(3);
  for (auto [m, n, k] : {std::array<std::int64_t, 3>{300, 70, 200}, {70, 300, 200}}) {
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        const Tensor a = uniform({m * k}, -1, 1, kFloat64, &gen), b = uniform({k * n}, -1, 1, kFloat64, &gen);
        std::vector<double> c1(static_cast<std::size_t>(m * n), 0.5), c2 = c1;
        const std::int64_t lda = ta ? m : k, ldb = tb ? k : n;
        {
          Threads t(1);
          blas::gemm<double>(ta, tb, m, n, k, 1.5, a.data<double>(), lda, b.data<double>(), ldb, 0.5, c1.data(), n);
        }
        {
          Threads t(2);
          blas::gemm<double>(ta, tb, m, n, k, 1.5, a.data<double>(), lda, b.data<double>(), ldb, 0.5, c2.data(), n);
        }
        for (std::size_t i = 0; i < c1.size(); ++i) ASSERT_NEAR(c1[i], c2[i], 1e-11) << "ta " << ta << " tb " << tb << " at " << i;
      }
  }
}

}  // namespace
}  // namespace kiln

// The SDK's packed GEMM (kiln/packed_gemm.hpp) against a plain triple loop, over the shapes where its
// blocking has edges: rows below, at and above one register block, columns below, at and above one
// panel, and K from 1 up; both packings, overwrite and accumulate, float and double; and bit-identical
// results on 1 and 2 threads.

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <random>
#include <vector>

#include "kiln/packed_gemm.hpp"
#include "plugins/host.hpp"
#include "tensor/parallel.hpp"

namespace kiln::plugins {
namespace {

template <class T>
std::vector<T> random_values(std::size_t n, std::mt19937& gen) {
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(u(gen));
  return v;
}

// C (+)= op(A) op(B) with a, b, c as packed_gemm takes them (A [M, K], or [K, M] when trans_a).
template <class T>
void reference(std::int64_t M, std::int64_t N, std::int64_t K, const T* a, bool trans_a, const T* b, bool trans, bool accumulate,
               T* c) {
  for (std::int64_t i = 0; i < M; ++i)
    for (std::int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (std::int64_t k = 0; k < K; ++k)
        s += double(trans_a ? a[k * M + i] : a[i * K + k]) * double(trans ? b[j * K + k] : b[k * N + j]);
      c[i * N + j] = static_cast<T>(accumulate ? double(c[i * N + j]) + s : s);
    }
}

template <class T>
void check_shapes(double tolerance) {
  std::mt19937 gen(7);
  const std::int64_t W = sdk::packed::kWidth<T>, NR = sdk::packed::kNR<T>;
  // Columns: below, at and above one vector and one panel; 4 and 7 vectors (panels ... 3, 2, 2), whole
  // and partial.
  for (std::int64_t M : {1, 7, 8, 9, 19})
    for (std::int64_t N : {std::int64_t(1), W + 1, NR - 1, NR, NR + 1, 4 * W, 4 * W - 3, 7 * W, 2 * NR + 5})
      for (std::int64_t K : {1, 5, 64})
        for (bool trans_a : {false, true})
          for (bool trans : {true, false})
            for (bool accumulate : {true, false}) {
              const auto a = random_values<T>(M * K, gen), b = random_values<T>(N * K, gen), c0 = random_values<T>(M * N, gen);
              std::vector<T> packed(sdk::packed_elements<T>(K, N, trans)), want = c0, got = c0;
              sdk::PackedB<T> pb(K, N, trans, packed.data());
              pb.pack(b.data(), trans ? K : N);
              reference(M, N, K, a.data(), trans_a, b.data(), trans, accumulate, want.data());
              sdk::packed_gemm(&host_services(), M, a.data(), trans_a ? M : K, pb, accumulate, got.data(), N, trans_a);
              double worst = 0;
              for (std::int64_t i = 0; i < M * N; ++i) worst = std::max(worst, std::isnan(got[i]) ? INFINITY : std::abs(double(got[i]) - double(want[i])));
              EXPECT_LT(worst, tolerance) << "M=" << M << " N=" << N << " K=" << K << " trans_a=" << trans_a
                                          << " trans=" << trans << " accumulate=" << accumulate;
            }
}

TEST(PackedGemm, PackedCopyIsNoLargerThanTheMatrix) {
  // A whole number of vectors packs into exactly K * N elements (no padding for the allocator to round
  // up); B read where it lies needs a copy of its last panel only, and only when that is partial.
  const std::int64_t W = sdk::packed::kWidth<float>;
  EXPECT_EQ(sdk::packed_elements<float>(1024, 4096, true), 1024 * 4096);
  EXPECT_EQ(sdk::packed_elements<float>(256, 1024, false), 0);
  EXPECT_EQ(sdk::packed_elements<float>(64, sdk::packed::kNR<float>, false), 0);
  EXPECT_EQ(sdk::packed_elements<float>(10, 4 * W - 3, false), 10 * 2 * W);  // panels 2, 2: the last partial
  EXPECT_EQ(sdk::packed_elements<float>(10, 3 * W + 5, false), 10 * 2 * W);  // panels 2, 2 (3 + 1 would leave 1 alone)
}

TEST(PackedGemm, PanelsNeverLeaveOneVectorAlone) {
  const std::int64_t W = sdk::packed::kWidth<float>;
  std::vector<float> buffer(sdk::packed_elements<float>(8, 16 * W, true));
  sdk::PackedB<float> pb(8, 16 * W, true, buffer.data());
  ASSERT_EQ(pb.panels(), 6);  // 3 3 3 3 2 2
  std::int64_t covered = 0;
  for (std::int64_t p = 0; p < pb.panels(); ++p) {
    EXPECT_EQ(pb.vectors(p), p < 4 ? 3 : 2) << p;
    EXPECT_EQ(pb.first(p), covered) << p;
    covered += pb.cols(p);
  }
  EXPECT_EQ(covered, 16 * W);
}

TEST(PackedGemm, SmallGemmMatchesBlasOnBothSidesOfItsThreshold) {
  std::mt19937 gen(5);
  for (const auto& [M, N, K] : {std::array<std::int64_t, 3>{200, 37, 90}, {1024, 512, 128}})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const auto a = random_values<double>(M * K, gen), b = random_values<double>(K * N, gen);
        std::vector<double> want(M * N, 0.5), got = want;
        std::vector<double> scratch(sdk::gemm_small_scratch<double>(M, N, K, tb));
        EXPECT_EQ(static_cast<std::int64_t>(scratch.size()), M * N * K > sdk::kSmallGemmMacs ? 0 : sdk::packed_elements<double>(K, N, tb));
        reference(M, N, K, a.data(), ta, b.data(), tb, true, want.data());
        sdk::gemm_small(&host_services(), ta, tb, M, N, K, a.data(), ta ? M : K, b.data(), tb ? K : N, true, got.data(), N,
                        scratch.data());
        double worst = 0;
        for (std::int64_t i = 0; i < M * N; ++i) worst = std::max(worst, std::isnan(got[i]) ? INFINITY : std::abs(got[i] - want[i]));
        EXPECT_LT(worst, 1e-11) << M << "x" << N << "x" << K << " ta=" << ta << " tb=" << tb;
      }
}

TEST(PackedGemm, MatchesTripleLoopFloat) { check_shapes<float>(1e-4); }
TEST(PackedGemm, MatchesTripleLoopDouble) { check_shapes<double>(1e-12); }

TEST(PackedGemm, LeadingDimensionsAndBitIdenticalAcrossThreads) {
  // Large enough to be split across threads; A and C live inside wider rows.
  const std::int64_t M = 64, N = 1000, K = 96, lda = 130, ldc = 1031;
  std::mt19937 gen(11);
  const auto a = random_values<float>(M * lda, gen), w = random_values<float>(N * K, gen);
  std::vector<float> packed(sdk::packed_elements<float>(K, N, true));
  sdk::PackedB<float> pb(K, N, true, packed.data());
  pb.pack(w.data(), K);
  std::vector<float> c1(M * ldc, -3.f), c2 = c1;
  const int before = num_threads();
  set_num_threads(1);
  sdk::packed_gemm(&host_services(), M, a.data(), lda, pb, true, c1.data(), ldc);
  set_num_threads(2);
  sdk::packed_gemm(&host_services(), M, a.data(), lda, pb, true, c2.data(), ldc);
  set_num_threads(before);
  EXPECT_EQ(c1, c2);
  for (std::int64_t i = 0; i < M; ++i) {
    EXPECT_EQ(c1[i * ldc + N], -3.f) << "wrote past the row's N columns";
    double s = -3;
    for (std::int64_t k = 0; k < K; ++k) s += double(a[i * lda + k]) * double(w[7 * K + k]);
    EXPECT_NEAR(c1[i * ldc + 7], s, 1e-4);
  }
}

}  // namespace
}  // namespace kiln::plugins

// The SDK's packed GEMM (kiln/packed_gemm.hpp) against a plain triple loop, over the shapes where its
// blocking has edges: rows below, at and above one register block, columns below, at and above one
// panel, and K from 1 up; both packings, overwrite and accumulate, float and double; and bit-identical
// results on 1 and 2 threads.

#include <gtest/gtest.h>

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

// C (+)= A op(B) with a, b, c as packed_gemm takes them.
template <class T>
void reference(std::int64_t M, std::int64_t N, std::int64_t K, const T* a, bool trans, const T* b, bool accumulate, T* c) {
  for (std::int64_t i = 0; i < M; ++i)
    for (std::int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (std::int64_t k = 0; k < K; ++k) s += double(a[i * K + k]) * double(trans ? b[j * K + k] : b[k * N + j]);
      c[i * N + j] = static_cast<T>(accumulate ? double(c[i * N + j]) + s : s);
    }
}

template <class T>
void check_shapes(double tolerance) {
  std::mt19937 gen(7);
  const std::int64_t NR = sdk::packed::kNR<T>;
  for (std::int64_t M : {1, 7, 8, 9, 19})
    for (std::int64_t N : {std::int64_t(1), NR - 1, NR, NR + 1, NR + 20, 2 * NR + 5})
      for (std::int64_t K : {1, 5, 64})
        for (bool trans : {true, false})
          for (bool accumulate : {true, false}) {
            const auto a = random_values<T>(M * K, gen), b = random_values<T>(N * K, gen), c0 = random_values<T>(M * N, gen);
            std::vector<T> packed(sdk::packed_elements<T>(K, N, trans)), want = c0, got = c0;
            sdk::PackedB<T> pb(K, N, trans, packed.data());
            pb.pack(b.data(), trans ? K : N);
            reference(M, N, K, a.data(), trans, b.data(), accumulate, want.data());
            sdk::packed_gemm(&host_services(), M, a.data(), K, pb, accumulate, got.data(), N);
            double worst = 0;
            for (std::int64_t i = 0; i < M * N; ++i) worst = std::max(worst, std::abs(double(got[i]) - double(want[i])));
            EXPECT_LT(worst, tolerance) << "M=" << M << " N=" << N << " K=" << K << " trans=" << trans
                                        << " accumulate=" << accumulate;
          }
}

TEST(PackedGemm, PackedCopyIsNoLargerThanTheMatrix) {
  // A whole number of vectors packs into exactly K * N elements (no padding for the allocator to round
  // up); B read where it lies needs a copy of its last partial panel only.
  EXPECT_EQ(sdk::packed_elements<float>(1024, 4096, true), 1024 * 4096);
  EXPECT_EQ(sdk::packed_elements<float>(256, 1024, false), 256 * (1024 % sdk::packed::kNR<float>));
  EXPECT_EQ(sdk::packed_elements<float>(64, sdk::packed::kNR<float>, false), 0);
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

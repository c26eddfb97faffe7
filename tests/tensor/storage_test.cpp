#include <gtest/gtest.h>

#include "tensor/tensor.hpp"

namespace kiln {
namespace {

TEST(Storage, FreedBuffersAreReused) {
  void* first;
  {
    Tensor t = zeros({1000});
    first = t.raw_data();
  }
  const auto before = memory_stats();
  Tensor again = zeros({1000});
  EXPECT_EQ(again.raw_data(), first);
  EXPECT_EQ(memory_stats().cache_hits, before.cache_hits + 1);
}

TEST(Storage, AlignedAndCounted) {
  const auto before = memory_stats().allocated_bytes;
  {
    Tensor t({3, 5}, kFloat64);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.raw_data()) % 64, 0u);
    EXPECT_GE(memory_stats().allocated_bytes, before + 120);
  }
  EXPECT_EQ(memory_stats().allocated_bytes, before);
}

TEST(Storage, EmptyCacheReleasesEverything) {
  { Tensor t = zeros({4096}); }
  EXPECT_GT(memory_stats().cached_bytes, 0);
  empty_cache();
  EXPECT_EQ(memory_stats().cached_bytes, 0);
}

TEST(Storage, CacheLimitIsRespected) {
  empty_cache();
  const auto old = cache_limit();
  set_cache_limit(1024);
  { Tensor t = zeros({4096}); }
  EXPECT_EQ(memory_stats().cached_bytes, 0);
  set_cache_limit(old);
}

}  // namespace
}  // namespace kiln

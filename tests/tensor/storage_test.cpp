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

TEST(Storage, MemoryLimitRefusesATensorBeforeAllocatingIt) {
  const auto old = memory_limit();
  const auto live = static_cast<std::size_t>(memory_stats().allocated_bytes);
  set_memory_limit(live + (std::size_t{1} << 20));
  const auto allocations = memory_stats().allocations;
  Tensor fits({1 << 16}, kFloat32);  // 256 KiB
  try {
    Tensor over({1 << 20}, kFloat32);  // 4 MiB
    ADD_FAILURE() << "a tensor over the memory limit was allocated";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("4194304 bytes"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("set_memory_limit"), std::string::npos) << e.what();
  }
  EXPECT_EQ(memory_stats().allocations, allocations + 1);  // the refused one is not counted
  set_memory_limit(0);
  Tensor now({1 << 20}, kFloat32);
  EXPECT_EQ(now.numel(), 1 << 20);
  set_memory_limit(old);
}

// Note [Making room]: a large request that no cached block serves returns unusable cached large blocks
// first (largest first, as many bytes as it asks for), so the process does not hold both.
TEST(Storage, ALargeMissReturnsCachedLargeBlocksFirst) {
  empty_cache();
  {
    Tensor big({16 << 20}, kFloat32);  // 64 MiB
    Tensor mid({2 << 20}, kFloat32);   // 8 MiB; both cached when freed
  }
  const std::int64_t cached = memory_stats().cached_bytes;
  EXPECT_GE(cached, std::int64_t{72} << 20);
  Tensor other({4 << 20}, kFloat32);  // 16 MiB: neither fits (8 MiB too small, 64 MiB over twice)
  // The 64 MiB block (the largest) went back to the system; the 8 MiB one is still cached.
  EXPECT_EQ(memory_stats().cached_bytes, cached - (std::int64_t{64} << 20));
  Tensor small({1 << 20}, kFloat32);  // 4 MiB: served by the cached 8 MiB block
  EXPECT_EQ(memory_stats().cached_bytes, 0);
  empty_cache();
}

}  // namespace
}  // namespace kiln

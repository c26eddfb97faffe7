// The skeleton's weight-gradient tasks (kiln/detail/recurrent_schedule.hpp, WeightParts): every part's blocks
// run once each and in block order, whichever thread runs them, only after their steps are done; and a
// failure on either side ends both without hanging.

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "kiln/detail/recurrent_schedule.hpp"

namespace kiln::plugins {
namespace {

using sdk::detail::WeightParts;

TEST(WeightParts, RunEachPartsBlocksOnceInOrderAfterTheirSteps) {
  constexpr std::int64_t kBlocks = 40;
  WeightParts parts(kBlocks);
  std::atomic<std::int64_t> steps_done{0};
  std::mutex m;
  std::vector<std::vector<std::int64_t>> order(WeightParts::kCount);
  std::atomic<bool> early{false};
  auto task = [&](int part, std::int64_t block) {
    if (block >= steps_done.load()) early = true;
    std::lock_guard<std::mutex> lock(m);
    order[static_cast<std::size_t>(part)].push_back(block);
  };
  std::thread other([&] { parts.work(task); });
  for (std::int64_t j = 0; j < kBlocks; ++j) {  // the steps, block by block
    for (volatile int spin = 0; spin < 2000; spin = spin + 1) {
    }
    steps_done.store(j + 1);
    parts.ready(j + 1);
  }
  parts.work(task);  // the steps' thread joins in
  other.join();
  EXPECT_FALSE(early) << "a block's weights ran before its steps were done";
  for (const auto& o : order) {
    ASSERT_EQ(o.size(), static_cast<std::size_t>(kBlocks));
    for (std::int64_t j = 0; j < kBlocks; ++j) EXPECT_EQ(o[static_cast<std::size_t>(j)], j);
  }
}

TEST(WeightParts, AFailedTaskEndsBothThreads) {
  WeightParts parts(8);
  parts.ready(8);
  std::atomic<int> ran{0}, threw{0};
  auto task = [&](int part, std::int64_t block) {
    if (part == WeightParts::kInput && block == 2) throw std::runtime_error("gemm failed");
    ++ran;
  };
  auto worker = [&] {
    try {
      parts.work(task);
    } catch (const std::runtime_error&) {
      ++threw;
    }
  };
  std::thread other(worker);
  worker();
  other.join();  // both return instead of waiting for the failed part's remaining blocks
  EXPECT_EQ(threw.load(), 1);
  EXPECT_LT(ran.load(), WeightParts::kCount * 8);
}

TEST(WeightParts, FailedStepsEndTheWaitingThread) {
  WeightParts parts(8);
  parts.ready(1);
  std::atomic<int> ran{0};
  std::thread other([&] { parts.work([&](int, std::int64_t) { ++ran; }); });
  parts.fail();  // the steps threw: blocks 1.. will never be ready
  other.join();
  EXPECT_LE(ran.load(), WeightParts::kCount);
}

}  // namespace
}  // namespace kiln::plugins

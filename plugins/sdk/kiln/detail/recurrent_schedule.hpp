#pragma once
// The plugin SDK's recurrent-kernel skeleton (kiln/recurrent_kernel.hpp), continued: how it spreads a
// sequence's work over Kiln's threads — rows of a pointwise pass, rows side by side for a whole
// sequence, and the blocks of steps whose GEMMs run beside the steps. Header-only; needs kiln/plugin.h.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>

#include "kiln/host_helpers.hpp"
#include "kiln/plugin.h"

namespace kiln::sdk::detail {

// Rows per chunk of a pointwise pass: small passes stay on one thread.
inline std::int64_t row_grain(std::int64_t B, std::int64_t width) {
  return B * width < 16384 ? B : std::max<std::int64_t>(1, 4096 / std::max<std::int64_t>(1, width));
}

// f(b) for the rows b in [r0, r1), split across Kiln's threads when the pass is large (inside a
// side_by_side block it runs on the calling thread).
template <class F>
void rows_of(const kiln_host* host, std::int64_t r0, std::int64_t r1, std::int64_t width, F&& f) {
  parallel_for(host, r1 - r0, row_grain(r1 - r0, width), [&](std::int64_t b0, std::int64_t b1) {
    for (std::int64_t b = r0 + b0; b < r0 + b1; ++b) f(b);
  });
}

// Note [Rows side by side]: a row's recurrence reads only that row's state, so with several threads
// the batch may be cut into one block of rows per thread, each block running every step on its own
// thread: one parallel region per sequence and no hand-off between steps. It pays only when each
// thread's rows are wide: two cores writing neighbouring rows of one [T, B, ...] buffer step after step
// slow each other down (measured here: a 16-row GEMM per thread took 4.1 us instead of 2.7 when the
// other thread's rows began 16 KiB further on, in reach of the hardware prefetcher). Below
// kSideBySideElements gate values per thread and step, steps(0, B) runs on the calling thread and
// splits only the work inside a step that is large enough. A row's arithmetic is the same either way,
// so results do not depend on the thread count.
inline constexpr std::int64_t kSideBySideElements = 16384;

inline std::int64_t rows_per_thread(const kiln_host* host, std::int64_t B) {
  const std::int64_t threads = std::max<std::int64_t>(1, host->num_threads());
  return (B + threads - 1) / threads;
}

inline bool side_by_side_rows(const kiln_host* host, std::int64_t B, std::int64_t width) {
  return host->num_threads() > 1 && rows_per_thread(host, B) * width >= kSideBySideElements;
}

template <class F>
void side_by_side(const kiln_host* host, std::int64_t B, std::int64_t width, F&& steps) {
  if (side_by_side_rows(host, B, width))
    parallel_for(host, B, rows_per_thread(host, B), [&](std::int64_t r0, std::int64_t r1) { steps(r0, r1); });
  else
    steps(0, B);
}

// Waits until ready() holds: spins briefly (the other thread is microseconds away), then yields its
// core each time round, so that when threads outnumber free cores the thread being waited for gets to
// run (spinning alone cost a whole scheduler time slice, 8 ms a step, with the cores busy elsewhere).
template <class Ready>
void wait_until(Ready&& ready) {
  for (int spins = 0; !ready(); ++spins) {
    if (spins < 2000) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    } else {
      std::this_thread::yield();
    }
  }
}

// Note [Weight gradients by blocks]: backward's dX, dW_ih, dW_hh and bias gradients are made block by
// block of steps (in the order backward runs them), each block's products added to the last's. On one
// thread a block runs as soon as its steps are done, while their gate gradients are in cache; with two
// threads and the steps on one (rows not side by side), that thread makes each block's dX and the other
// thread its weight gradients meanwhile, so the two threads carry about equal shares. The blocks and their order are the same for any
// thread count, so are the sums. Small weights take blocks of about 256 rows (many blocks to overlap),
// large ones about 2048 (each block rereads and rewrites dW).
struct WeightBlocks {
  std::int64_t T, steps, blocks;
  bool reverse, overlap, after;
  template <class Layout>
  WeightBlocks(const Layout& L, const kiln_recurrent_problem& p, std::int64_t threads, bool rows_side_by_side)
      : T(L.T), reverse(p.reverse != 0) {
    const std::int64_t weights = L.G * L.H * (L.I + L.H) * static_cast<std::int64_t>(p.dtype == KILN_FLOAT64 ? 8 : 4);
    const std::int64_t rows = weights <= (std::int64_t(1) << 20) ? 256 : 2048;
    const std::int64_t batch = std::max<std::int64_t>(1, L.B);  // an empty batch still plans (and runs nothing)
    steps = std::max<std::int64_t>(1, std::min<std::int64_t>(std::max<std::int64_t>(T, 1), (rows + batch - 1) / batch));
    blocks = (T + steps - 1) / steps;
    after = rows_side_by_side;                     // both threads run steps: the blocks come after
    overlap = !after && threads > 1 && blocks > 1;
  }
  // Block j's steps as the time range [t0, t1): the j-th group of `steps` from the end of the run.
  void times(std::int64_t j, std::int64_t& t0, std::int64_t& t1) const {
    const std::int64_t a = j * steps, b = std::min(T, (j + 1) * steps);
    t0 = reverse ? a : T - b;
    t1 = reverse ? b : T - a;
  }
};

// The weight gradients' three parts — dW_hh, dW_ih, the biases — each summed over blocks in block
// order, as tasks two threads share: a part's block j may run once the steps of block j are done and
// the part's block j - 1 is, on whichever thread asks first. The thread running the steps joins in when
// they are done, so the last blocks' weights do not wait on one thread. Any thread may run any task:
// each sum keeps its order, so results do not depend on who ran what.
class WeightParts {
 public:
  enum { kRecurrent, kInput, kBias, kCount };

  explicit WeightParts(std::int64_t blocks) : blocks_(blocks) {}

  /// Blocks [0, n) have had their steps done.
  void ready(std::int64_t n) { ready_.store(n, std::memory_order_release); }
  /// The steps failed: no more tasks will become ready; work() returns.
  void fail() {
    failed_.store(true, std::memory_order_release);
    ready_.store(blocks_, std::memory_order_release);
  }

  /// Runs task(part, block) for tasks as they become ready until every part has every block.
  template <class Task>
  void work(Task&& task) {
    for (;;) {
      int part = -1;
      std::int64_t block = 0;
      bool finished = false;
      wait_until([&] { return claim(part, block, finished) || finished; });
      if (part < 0) return;
      try {
        task(part, block);
      } catch (...) {
        fail();
        throw;
      }
      std::lock_guard<std::mutex> lock(mutex_);
      ++next_[part];
      busy_[part] = false;
    }
  }

 private:
  // Takes the ready, idle part furthest behind (dW_hh first, the largest, on a tie).
  bool claim(int& part, std::int64_t& block, bool& finished) {
    if (failed_.load(std::memory_order_acquire)) return finished = true;
    const std::int64_t ready = ready_.load(std::memory_order_acquire);
    std::lock_guard<std::mutex> lock(mutex_);
    finished = true;
    for (int q = 0; q < kCount; ++q) {
      finished = finished && next_[q] == blocks_;
      if (!busy_[q] && next_[q] < ready && (part < 0 || next_[q] < next_[part])) part = q;
    }
    if (part < 0) return false;
    busy_[part] = true;
    block = next_[part];
    return true;
  }

  const std::int64_t blocks_;
  std::atomic<std::int64_t> ready_{0};
  std::atomic<bool> failed_{false};
  std::mutex mutex_;
  std::int64_t next_[kCount] = {};
  bool busy_[kCount] = {};
};

}  // namespace kiln::sdk::detail

#pragma once
// Storage: one 64-byte-aligned buffer from Kiln's caching allocator.
//
// Note [Caching allocator]: on these machines the first touch of fresh memory costs about 10 us per
// 4 KiB page, and a training loop allocates the same sizes every step. Freed buffers therefore go
// back to a size-class free list instead of to the system, and the next request of that class reuses
// them (already faulted in). Sizes are rounded up to a class (64-byte multiples below 4 KiB, then four
// classes per power of two) so that slightly different shapes share buffers; from 1 MiB on, a request
// its class can't serve takes the smallest cached block up to twice its size rather than adding a new
// one beside the cache (a fused layer's forward and backward ask for different large sizes). The cache
// holds at most cache_limit() bytes; empty_cache() returns everything to the system.

#include <cstddef>
#include <cstdint>

namespace kiln {

class Storage {
 public:
  explicit Storage(std::size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }

 private:
  void* data_;
  std::size_t bytes_;     // requested size
  std::size_t capacity_;  // the block's class size: at least bytes_, at most twice it
};

struct MemoryStats {
  std::int64_t allocated_bytes = 0;       ///< bytes in live tensors (by class size)
  std::int64_t peak_allocated_bytes = 0;  ///< high-water mark since reset_peak_memory_stats()
  std::int64_t cached_bytes = 0;          ///< bytes held in free lists for reuse
  std::int64_t allocations = 0;           ///< requests served
  std::int64_t cache_hits = 0;            ///< requests served from the free lists
};

/// Allocator counters, e.g. to check that a training loop does not grow:
///   auto before = kiln::memory_stats().allocated_bytes;
MemoryStats memory_stats();
/// memory_stats().allocated_bytes without taking the allocator's lock.
std::int64_t live_tensor_bytes();
void reset_peak_memory_stats();
/// Returns every cached block to the system.
void empty_cache();
/// The most bytes the free lists may hold (default 4 GiB); beyond it freed blocks go to the system.
void set_cache_limit(std::size_t bytes);
std::size_t cache_limit();
/// The most bytes live tensors may hold together (0, the default: no limit but the machine's memory).
/// A tensor that would go over it is refused with a kiln::Error naming its size, before any memory is
/// touched: a service, a test or a fuzzer bounds what an input can make Kiln allocate, as
/// torch.cuda.set_per_process_memory_fraction does for a GPU.
void set_memory_limit(std::size_t bytes);
std::size_t memory_limit();

}  // namespace kiln

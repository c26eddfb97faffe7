#include "tensor/storage.hpp"

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

#include <unistd.h>

#include "tensor/error.hpp"

namespace kiln {
namespace {

constexpr std::size_t kAlignment = 64;
constexpr std::size_t kBestFitFrom = std::size_t{1} << 20;  // blocks from 1 MiB may serve smaller requests

std::size_t size_class(std::size_t bytes) {
  if (bytes <= kAlignment) return kAlignment;
  if (bytes <= 4096) return (bytes + kAlignment - 1) / kAlignment * kAlignment;
  std::size_t pow2 = 4096;
  while (pow2 * 2 < bytes) pow2 *= 2;  // pow2 < bytes <= 2 * pow2
  const std::size_t step = pow2 / 4;
  return (bytes + step - 1) / step * step;
}

struct Pool {
  std::mutex mutex;
  std::map<std::size_t, std::vector<void*>> free_lists;  // by class size, ordered for best fit
  MemoryStats stats;
  std::size_t limit = std::size_t{4} << 30;  // cache_limit()
  std::size_t memory_limit = 0;              // memory_limit(); 0: none

  void release_all() {
    for (auto& [cls, blocks] : free_lists)
      for (void* p : blocks) std::free(p);
    free_lists.clear();
    stats.cached_bytes = 0;
  }
  ~Pool() { release_all(); }

  // Note [Making room]: a large request no cached block serves first returns cached large blocks to the
  // system, as many bytes as it asks for, the largest first: they would otherwise sit beside the new
  // block, unused, and the process would hold both (after a shape change, or while a training step's
  // pattern of sizes settles). The system allocator can then hand the same memory back for it.
  void make_room(std::size_t bytes) {
    std::size_t freed = 0;
    for (auto it = free_lists.rbegin(); it != free_lists.rend() && it->first >= kBestFitFrom && freed < bytes; ++it) {
      auto& blocks = it->second;
      while (!blocks.empty() && freed < bytes) {
        std::free(blocks.back());
        blocks.pop_back();
        freed += it->first;
        stats.cached_bytes -= static_cast<std::int64_t>(it->first);
      }
    }
  }
};

// allocated_bytes, readable without the lock (the tape checks it on every record).
std::atomic<std::int64_t> g_live_bytes{0};

Pool& pool() {
  static Pool* p = new Pool;  // never destroyed: tensors may outlive static destruction order
  return *p;
}

// This machine's memory: a tensor larger than all of it is refused before asking the system, whose
// answer depends on overcommit (and, under AddressSanitizer, on its allocator's limits).
std::size_t physical_memory() {
  static const std::size_t bytes = [] {
    const long pages = ::sysconf(_SC_PHYS_PAGES), size = ::sysconf(_SC_PAGE_SIZE);
    return pages > 0 && size > 0 ? static_cast<std::size_t>(pages) * static_cast<std::size_t>(size) : ~std::size_t{0};
  }();
  return bytes;
}

std::size_t checked_class(std::size_t bytes) {
  if (bytes > physical_memory())
    throw Error(fmt::format("out of memory: a tensor of {} bytes ({:.3g} GiB) is more than this machine's {:.3g} GiB", bytes,
                            static_cast<double>(bytes) / (1 << 30), static_cast<double>(physical_memory()) / (1 << 30)));
  return size_class(bytes);
}

}  // namespace

Storage::Storage(std::size_t bytes) : data_(nullptr), bytes_(bytes), capacity_(checked_class(bytes)) {
  const std::size_t cls = capacity_;
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    const std::size_t live = static_cast<std::size_t>(p.stats.allocated_bytes);
    if (p.memory_limit != 0 && (cls > p.memory_limit || live > p.memory_limit - cls))
      throw Error(fmt::format("out of memory: a tensor of {} bytes would bring Kiln's live tensors from {} to {} bytes, over "
                              "the limit of {} bytes set by kiln::set_memory_limit", bytes, live, live + cls, p.memory_limit));
    ++p.stats.allocations;
    // Best fit: the request's class, else (for large blocks) the smallest cached class up to twice it.
    // A block one class too big serves the request instead of a fresh one being added beside it.
    const std::size_t up_to = cls >= kBestFitFrom ? 2 * cls : cls;
    for (auto it = p.free_lists.lower_bound(cls); it != p.free_lists.end() && it->first <= up_to; ++it) {
      if (it->second.empty()) continue;
      data_ = it->second.back();
      it->second.pop_back();
      capacity_ = it->first;
      p.stats.cached_bytes -= static_cast<std::int64_t>(capacity_);
      ++p.stats.cache_hits;
      break;
    }
    p.stats.allocated_bytes += static_cast<std::int64_t>(capacity_);
    g_live_bytes.store(p.stats.allocated_bytes, std::memory_order_relaxed);
    if (p.stats.allocated_bytes > p.stats.peak_allocated_bytes) p.stats.peak_allocated_bytes = p.stats.allocated_bytes;
    if (data_ != nullptr) return;
    if (cls >= kBestFitFrom) p.make_room(cls);
  }
  data_ = std::aligned_alloc(kAlignment, cls);
  if (data_ == nullptr) {
    std::lock_guard<std::mutex> lock(p.mutex);
    p.stats.allocated_bytes -= static_cast<std::int64_t>(cls);
    g_live_bytes.store(p.stats.allocated_bytes, std::memory_order_relaxed);
    throw Error(fmt::format("out of memory: a tensor of {} bytes ({:.3g} GiB) could not be allocated, with {:.3g} GiB in use",
                            bytes_, static_cast<double>(bytes_) / (1 << 30),
                            static_cast<double>(p.stats.allocated_bytes) / (1 << 30)));
  }
}

Storage::~Storage() {
  const std::size_t cls = capacity_;
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  p.stats.allocated_bytes -= static_cast<std::int64_t>(cls);
  g_live_bytes.store(p.stats.allocated_bytes, std::memory_order_relaxed);
  if (static_cast<std::size_t>(p.stats.cached_bytes) + cls > p.limit) {
    std::free(data_);
    return;
  }
  p.free_lists[cls].push_back(data_);
  p.stats.cached_bytes += static_cast<std::int64_t>(cls);
}

MemoryStats memory_stats() {
  std::lock_guard<std::mutex> lock(pool().mutex);
  return pool().stats;
}

void reset_peak_memory_stats() {
  std::lock_guard<std::mutex> lock(pool().mutex);
  pool().stats.peak_allocated_bytes = pool().stats.allocated_bytes;
}

void empty_cache() {
  std::lock_guard<std::mutex> lock(pool().mutex);
  pool().release_all();
}

void set_cache_limit(std::size_t bytes) {
  std::lock_guard<std::mutex> lock(pool().mutex);
  pool().limit = bytes;
}

std::size_t cache_limit() {
  std::lock_guard<std::mutex> lock(pool().mutex);
  return pool().limit;
}

void set_memory_limit(std::size_t bytes) {
  std::lock_guard<std::mutex> lock(pool().mutex);
  pool().memory_limit = bytes;
}

std::size_t memory_limit() {
  std::lock_guard<std::mutex> lock(pool().mutex);
  return pool().memory_limit;
}

std::int64_t live_tensor_bytes() { return g_live_bytes.load(std::memory_order_relaxed); }

}  // namespace kiln

#include "tensor/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "tensor/error.hpp"

namespace kiln {
namespace {

thread_local bool t_in_region = false;

constexpr std::chrono::microseconds kSpin{1000};

// Workers wait for a job by spinning up to a millisecond (steps of a recurrent kernel come microseconds
// apart, a training step's regions a few hundred), then sleep on a condition variable so an idle pool
// costs nothing.
class Pool {
 public:
  static Pool& get() {
    static Pool* pool = new Pool;  // never destroyed: workers may still be parked at exit
    return *pool;
  }

  int size() const { return size_; }

  void resize(int n) {
    std::lock_guard<std::mutex> run(run_mutex_);
    stop_workers();
    size_ = std::max(1, n);
    stop_ = false;
    // A worker starts from the generation current now: a job posted before its thread gets going is
    // still its to run.
    const std::uint64_t now = generation_.load(std::memory_order_acquire);
    for (int i = 1; i < size_; ++i) workers_.emplace_back([this, i, now] { work(i, now); });
  }

  void run(int chunks, const std::function<void(int)>& job) {
    std::lock_guard<std::mutex> run(run_mutex_);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &job;
      chunks_ = chunks;
      pending_.store(chunks - 1, std::memory_order_relaxed);
      error_ = nullptr;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    execute(job, 0);
    while (pending_.load(std::memory_order_acquire) > 0) std::this_thread::yield();
    if (error_) std::rethrow_exception(error_);
  }

 private:
  Pool() {
    const char* env = std::getenv("KILN_NUM_THREADS");
    resize(env != nullptr ? threads_from_env(env) : 1);
  }

  // KILN_NUM_THREADS: a whole number in [1, kMaxThreads]; anything else is refused, naming the value.
  static int threads_from_env(const std::string& v) {
    char* end = nullptr;
    errno = 0;
    const long n = std::strtol(v.c_str(), &end, 10);
    KILN_CHECK(!v.empty() && end == v.c_str() + v.size() && errno == 0 && n >= 1 && n <= kMaxThreads,
               "KILN_NUM_THREADS='{}': give a whole number of threads from 1 to {}", v, kMaxThreads);
    return static_cast<int>(n);
  }

  void execute(const std::function<void(int)>& job, int chunk) {
    t_in_region = true;
    try {
      job(chunk);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
    t_in_region = false;
  }

  void work(int index, std::uint64_t seen) {
    t_in_region = true;
    for (;;) {
      // Spin for up to kSpin before sleeping: a training step's parallel regions come a few hundred
      // microseconds apart (the graph's own work between them), and waking a sleeping thread here
      // costs about as much as the region.
      const auto until = std::chrono::steady_clock::now() + kSpin;
      for (int spins = 0; generation_.load(std::memory_order_acquire) == seen; ++spins) {
        if (stop_) return;
        if (spins % 256 == 255 && std::chrono::steady_clock::now() > until) break;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      }
      if (generation_.load(std::memory_order_acquire) == seen) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_.load(std::memory_order_acquire) != seen; });
        if (stop_) return;
      }
      const std::function<void(int)>* job;
      int chunks;
      {
        std::lock_guard<std::mutex> lock(mutex_);  // the job and its generation, read together
        seen = generation_.load(std::memory_order_acquire);
        job = job_;
        chunks = chunks_;
      }
      if (index < chunks) {
        execute(*job, index);
        t_in_region = true;
        pending_.fetch_sub(1, std::memory_order_acq_rel);
      }
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  std::mutex run_mutex_;  // one parallel_for at a time
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::thread> workers_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  const std::function<void(int)>* job_ = nullptr;
  int chunks_ = 0;
  int size_ = 1;
  std::exception_ptr error_;
};

}  // namespace

void set_num_threads(int n) {
  KILN_CHECK(n >= 1 && n <= kMaxThreads, "set_num_threads: {} threads asked for; give 1 to {}", n, kMaxThreads);
  Pool::get().resize(n);
}
int num_threads() { return Pool::get().size(); }
bool in_parallel_region() { return t_in_region; }

void parallel_for(std::int64_t n, std::int64_t grain, const std::function<void(std::int64_t, std::int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<std::int64_t>(1, grain);
  const std::int64_t chunks = std::min<std::int64_t>(num_threads(), (n + grain - 1) / grain);
  if (chunks <= 1 || t_in_region) {
    fn(0, n);
    return;
  }
  const std::int64_t per = (n + chunks - 1) / chunks;
  Pool::get().run(static_cast<int>(chunks), [&](int c) {
    const std::int64_t begin = c * per, end = std::min(n, begin + per);
    if (begin < end) fn(begin, end);
  });
}

}  // namespace kiln

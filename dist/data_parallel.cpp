#include "dist/data_parallel.hpp"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "autograd/tape.hpp"
#include "dist/dist.hpp"
#include "dist/mpi_lock.hpp"
#include "tensor/error.hpp"

namespace kiln::dist {

// Note [MPI progress]: Open MPI moves a non-blocking collective on only inside MPI calls, and while
// backward computes the next layer nobody calls MPI: a bucket started early would make no headway until
// the end of backward. So while buckets are in flight a thread wakes every 250 us and tests them
// (MPI_Testall, under the MPI lock: Note [One MPI caller at a time]), as PyTorch's backends keep threads
// of their own. It sleeps between tests and waits on a condition when nothing is in flight: no core is
// kept busy (two busy-waiting threads on two cores would halve both ranks).
struct DataParallel::Requests {
  std::vector<MPI_Request> r;
  std::thread thread;
  std::mutex m;
  std::condition_variable cv;
  bool polling = false, stop = false;

  void wake() {
    if (!thread.joinable()) {
      if (!detail::threads_may_call_mpi()) return;  // the training thread's own calls progress it
      thread = std::thread([this] { poll(); });
    }
    {
      const std::lock_guard<std::mutex> lk(m);
      polling = true;
    }
    cv.notify_one();
  }
  void poll() {
    std::unique_lock<std::mutex> lk(m);
    for (;;) {
      cv.wait(lk, [&] { return polling || stop; });
      if (stop) return;
      lk.unlock();
      std::this_thread::sleep_for(std::chrono::microseconds(250));
      int all = 0;
      {
        const auto mpi = detail::lock_mpi();
        MPI_Testall(static_cast<int>(r.size()), r.data(), &all, MPI_STATUSES_IGNORE);
      }
      lk.lock();
      if (all != 0) polling = false;  // the next start wakes it again
    }
  }
  ~Requests() {
    if (!thread.joinable()) return;
    {
      const std::lock_guard<std::mutex> lk(m);
      stop = true;
    }
    cv.notify_one();
    thread.join();
  }
};

namespace {

double now_ms() { return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// dst[k] = w * src[k] (or 0 without src).
template <class T>
void pack(T* dst, const Tensor& src, std::int64_t n, double w) {
  if (!src.defined()) {
    std::fill(dst, dst + n, T(0));
    return;
  }
  const T* s = src.data<T>();
  const T tw = static_cast<T>(w);
  for (std::int64_t k = 0; k < n; ++k) dst[k] = tw * s[k];
}

}  // namespace

DataParallel::DataParallel(std::shared_ptr<nn::Module> module, DataParallelOptions options)
    : Module("DataParallel"), module_(std::move(module)), options_(options), requests_(std::make_unique<Requests>()) {
  KILN_CHECK(module_ != nullptr, "DataParallel: needs a module");
  KILN_CHECK(options_.bucket_bytes > 0, "DataParallel: bucket_bytes must be positive");
  init();
  share_ = 1.0 / world_size();
  register_module("module", module_);  // names as PyTorch's DDP: "module.weight_ih_l0"
  for (const auto& [name, p] : module_->named_parameters())
    if (p.requires_grad()) params_.push_back(p);
  // Note [Gradient buckets]: reverse registration order, one dtype per bucket.
  bucket_of_.resize(params_.size());
  std::vector<std::size_t> current;
  std::size_t bytes = 0;
  for (std::size_t k = params_.size(); k-- > 0;) {
    const Variable& p = params_[k];
    if (!current.empty() && (bytes + p.value().nbytes() > options_.bucket_bytes || params_[current.front()].dtype() != p.dtype())) {
      buckets_.push_back(current);
      current.clear();
      bytes = 0;
    }
    current.push_back(k);
    bucket_of_[k] = buckets_.size();
    bytes += p.value().nbytes();
    bytes_ += p.value().nbytes();
  }
  if (!current.empty()) buckets_.push_back(current);
  broadcast_parameters();
  if (options_.overlap)
    for (std::size_t k = 0; k < params_.size(); ++k)
      hooks_.push_back(params_[k].register_post_accumulate_grad_hook([this, k](const Tensor&) { ready(k); }));
}

DataParallel::~DataParallel() {
  for (auto& h : hooks_) h.remove();
  abandon_pass();
}

Variable DataParallel::forward(const Variable& input) { return (*module_)(input); }

std::shared_ptr<nn::Module> DataParallel::clone() const {
  throw Error("DataParallel: clone the wrapped module (ddp.module().clone()); a copy of the wrapper would "
              "broadcast on one rank alone");
}

void DataParallel::broadcast_parameters() {
  if (!distributed()) return;
  for (auto& [name, p] : module_->named_parameters()) {
    Tensor v = p.value();  // shares the parameter's storage
    broadcast(v, 0);
  }
}

void DataParallel::set_share(double weight) {
  KILN_CHECK(weight >= 0 && weight <= 1, "DataParallel::set_share: {} is not a share of the global batch (0 to 1)", weight);
  share_ = weight;
}

void DataParallel::begin_pass() {
  KILN_CHECK(!broken_, "DataParallel: an earlier backward pass failed while its gradients were being reduced, so the ranks "
             "no longer agree on what was sent; end the job (dist::abort) rather than go on");
  KILN_CHECK(!open_, "DataParallel: a reduction is already under way");
  if (packed_.size() != buckets_.size()) {
    packed_.clear();
    for (const auto& bucket : buckets_) {
      std::int64_t n = 0;
      for (std::size_t k : bucket) n += params_[k].numel();
      KILN_CHECK(n <= INT32_MAX, "DataParallel: a bucket of {} elements", n);
      packed_.push_back(zeros({n}, params_[bucket.front()].dtype()));
    }
  }
  missing_.resize(buckets_.size());
  for (std::size_t b = 0; b < buckets_.size(); ++b) missing_[b] = buckets_[b].size();
  done_.assign(params_.size(), 0);
  {
    const auto mpi = detail::lock_mpi();  // the progress thread reads them
    requests_->r.assign(buckets_.size(), MPI_REQUEST_NULL);
  }
  unpacked_.assign(buckets_.size(), 0);
  next_ = 0;
  stats_ = ReductionStats{buckets_.size(), 0, 0, 0};
  open_ = true;
}

// Note [Gradient buckets]: a parameter's gradient is complete for this pass.
void DataParallel::ready(std::size_t param) {
  if (!sync_) return;
  if (!open_) {
    begin_pass();
    // The callback runs when the pass ends; a pass that fails drops it, and the guard then marks the
    // reduction broken (some buckets may have started on this rank alone).
    struct Dropped {
      explicit Dropped(DataParallel* d) : ddp(d) {}
      Dropped(const Dropped&) = delete;
      Dropped& operator=(const Dropped&) = delete;
      DataParallel* ddp;
      bool ran = false;
      ~Dropped() {
        if (!ran) ddp->abandon_pass();
      }
    };
    auto guard = std::make_shared<Dropped>(this);
    queue_backward_callback([this, guard] {
      guard->ran = true;
      const double t0 = now_ms();
      stats_.overlap_ms = stats_.started_during_backward > 0 ? t0 - first_start_ : 0;
      finish_pass();
      stats_.wait_ms = now_ms() - t0;
    });
  }
  if (done_[param]) return;
  done_[param] = 1;
  --missing_[bucket_of_[param]];
  const std::size_t before = next_;
  if (before == 0 && missing_[0] == 0) first_start_ = now_ms();
  while (next_ < buckets_.size() && missing_[next_] == 0) start(next_++);
  stats_.started_during_backward += next_ - before;
  progress();
}

void DataParallel::start(std::size_t b) {
  const DType dt = packed_[b].dtype();
  std::int64_t at = 0;
  for (std::size_t k : buckets_[b]) {
    const std::int64_t n = params_[k].numel();
    if (dt == kFloat64)
      pack(packed_[b].data<double>() + at, params_[k].grad(), n, share_);
    else
      pack(packed_[b].data<float>() + at, params_[k].grad(), n, share_);
    at += n;
  }
  if (!distributed()) return;  // one rank: the sum is its own weighted gradient
  int rc = 0;
  {
    const auto mpi = detail::lock_mpi();
    rc = MPI_Iallreduce(MPI_IN_PLACE, packed_[b].raw_data(), static_cast<int>(at), dt == kFloat64 ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM,
                        MPI_COMM_WORLD, &requests_->r[b]);
  }
  KILN_CHECK(rc == MPI_SUCCESS, "DataParallel: MPI_Iallreduce of gradient bucket {} failed on rank {} (code {})", b, rank(), rc);
  if (open_) requests_->wake();  // Note [MPI progress]: during backward
}

// Lets MPI move the started all-reduces on (Open MPI progresses them inside MPI calls) and writes back
// those that have finished.
void DataParallel::progress() {
  if (!distributed()) return;
  int count = 0;
  std::vector<int> finished(buckets_.size());
  const auto mpi = detail::lock_mpi();
  const int rc = MPI_Testsome(static_cast<int>(next_), requests_->r.data(), &count, finished.data(), MPI_STATUSES_IGNORE);
  KILN_CHECK(rc == MPI_SUCCESS, "DataParallel: testing gradient buckets failed on rank {}", rank());
  if (count == MPI_UNDEFINED) return;
  for (int i = 0; i < count; ++i) unpack(static_cast<std::size_t>(finished[static_cast<std::size_t>(i)]));
}

void DataParallel::unpack(std::size_t b) {
  if (unpacked_[b]) return;
  unpacked_[b] = 1;
  const Tensor& sums = packed_[b];
  const std::size_t esize = element_size(sums.dtype());
  std::int64_t at = 0;
  for (std::size_t k : buckets_[b]) {
    Variable& p = params_[k];
    Tensor g = p.grad();
    const bool own = g.defined() && g.use_count() <= 2;  // the parameter's alone (and this copy): written in place
    if (!own) g = Tensor(p.shape(), p.dtype());
    std::memcpy(g.raw_data(), static_cast<const char*>(sums.raw_data()) + at * static_cast<std::int64_t>(esize), g.nbytes());
    if (!own) p.set_grad(g);
    at += p.numel();
  }
}

void DataParallel::finish_pass() {
  open_ = false;  // whatever happens below, the next pass starts afresh
  ++reductions_;
  while (next_ < buckets_.size()) start(next_++);
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    if (unpacked_[b]) continue;
    if (!distributed()) {
      unpack(b);
      continue;
    }
    int rc = 0;
    {
      const auto mpi = detail::lock_mpi();
      rc = MPI_Wait(&requests_->r[b], MPI_STATUS_IGNORE);
    }
    KILN_CHECK(rc == MPI_SUCCESS, "DataParallel: waiting for gradient bucket {} failed on rank {}", b, rank());
    unpack(b);
  }
}

// A pass that failed: the buckets started here were started on every rank (the others go on to start
// them all), so they complete; waiting for them leaves no buffer in MPI's hands. The ranks may no longer
// agree on what comes next, so the next reduction refuses.
void DataParallel::abandon_pass() noexcept {
  if (!open_) return;
  open_ = false;
  broken_ = true;
  if (distributed()) {
    const auto mpi = detail::lock_mpi();
    for (std::size_t b = 0; b < next_; ++b) MPI_Wait(&requests_->r[b], MPI_STATUS_IGNORE);
  }
}

void DataParallel::synchronize() {
  const double t0 = now_ms();
  begin_pass();
  finish_pass();
  stats_.wait_ms = now_ms() - t0;
}

}  // namespace kiln::dist

#include "dist/data_parallel.hpp"

#include <mpi.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "dist/dist.hpp"
#include "tensor/error.hpp"
#include "tensor/math.hpp"

namespace kiln::dist {

DataParallel::DataParallel(nn::Module& module, std::size_t bucket_bytes) : module_(module) {
  init();
  for (const auto& [name, p] : module.named_parameters())
    if (p.requires_grad()) params_.push_back(p);
  // Note [Gradient buckets]: reverse registration order, one dtype per bucket.
  std::vector<std::size_t> current;
  std::size_t bytes = 0;
  for (std::size_t k = params_.size(); k-- > 0;) {
    const Variable& p = params_[k];
    if (!current.empty() && (bytes + p.value().nbytes() > bucket_bytes || params_[current.front()].dtype() != p.dtype())) {
      buckets_.push_back(current);
      current.clear();
      bytes = 0;
    }
    current.push_back(k);
    bytes += p.value().nbytes();
    bytes_ += p.value().nbytes();
  }
  if (!current.empty()) buckets_.push_back(current);
  broadcast_parameters();
}

void DataParallel::broadcast_parameters() {
  if (!distributed()) return;
  for (auto& [name, p] : module_.named_parameters()) {
    Tensor v = p.value();  // shares the parameter's storage
    broadcast(v, 0);
  }
}

namespace {

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

void DataParallel::reduce_gradients(double weight) {
  if (!distributed()) {
    if (weight != 1.0)
      for (Variable& p : params_)
        if (p.grad().defined()) p.set_grad(math::scale(p.grad(), weight));
    return;
  }
  // Note [Gradient buckets]: the packed buffers are kept from step to step and the sums written back into
  // the gradients in place, so a step allocates nothing here (fresh pages cost a first touch each).
  if (packed_.size() != buckets_.size()) {
    packed_.clear();
    for (const auto& bucket : buckets_) {
      std::int64_t n = 0;
      for (std::size_t k : bucket) n += params_[k].numel();
      packed_.push_back(zeros({n}, params_[bucket.front()].dtype()));
    }
  }
  std::vector<MPI_Request> requests(buckets_.size(), MPI_REQUEST_NULL);
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    const DType dt = packed_[b].dtype();
    std::int64_t at = 0;
    for (std::size_t k : buckets_[b]) {
      const std::int64_t n = params_[k].numel();
      if (dt == kFloat64)
        pack(packed_[b].data<double>() + at, params_[k].grad(), n, weight);
      else
        pack(packed_[b].data<float>() + at, params_[k].grad(), n, weight);
      at += n;
    }
    KILN_CHECK(at <= INT32_MAX, "DataParallel: a bucket of {} elements", at);
    const int rc = MPI_Iallreduce(MPI_IN_PLACE, packed_[b].raw_data(), static_cast<int>(at), dt == kFloat64 ? MPI_DOUBLE : MPI_FLOAT,
                                  MPI_SUM, MPI_COMM_WORLD, &requests[b]);
    KILN_CHECK(rc == MPI_SUCCESS, "DataParallel: MPI_Iallreduce failed on rank {} (code {})", rank(), rc);
  }
  for (std::size_t done = 0; done < buckets_.size(); ++done) {
    int b = MPI_UNDEFINED;
    const int rc = MPI_Waitany(static_cast<int>(requests.size()), requests.data(), &b, MPI_STATUS_IGNORE);
    KILN_CHECK(rc == MPI_SUCCESS && b != MPI_UNDEFINED, "DataParallel: waiting for a gradient bucket failed on rank {}", rank());
    const Tensor& sums = packed_[static_cast<std::size_t>(b)];
    const std::size_t esize = element_size(sums.dtype());
    std::int64_t at = 0;
    for (std::size_t k : buckets_[static_cast<std::size_t>(b)]) {
      Variable& p = params_[k];
      Tensor g = p.grad();
      const bool own = g.defined() && g.use_count() <= 2;  // the parameter's alone (and this copy): written in place
      if (!own) g = Tensor(p.shape(), p.dtype());
      std::memcpy(g.raw_data(), static_cast<const char*>(sums.raw_data()) + at * static_cast<std::int64_t>(esize), g.nbytes());
      if (!own) p.set_grad(g);
      at += p.numel();
    }
  }
}

}  // namespace kiln::dist

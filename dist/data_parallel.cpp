#include "dist/data_parallel.hpp"

#include <mpi.h>

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

void DataParallel::reduce_gradients(double weight) {
  if (!distributed()) {
    if (weight != 1.0)
      for (Variable& p : params_)
        if (p.grad().defined()) p.set_grad(math::scale(p.grad(), weight));
    return;
  }
  std::vector<Tensor> packed(buckets_.size());
  std::vector<MPI_Request> requests(buckets_.size(), MPI_REQUEST_NULL);
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    std::int64_t n = 0;
    for (std::size_t k : buckets_[b]) n += params_[k].numel();
    const DType dt = params_[buckets_[b].front()].dtype();
    packed[b] = zeros({n}, dt);
    std::int64_t at = 0;
    for (std::size_t k : buckets_[b]) {
      const Tensor g = params_[k].grad();
      if (g.defined()) {
        const Tensor s = weight == 1.0 ? g : math::scale(g, weight);
        std::memcpy(static_cast<char*>(packed[b].raw_data()) + at * static_cast<std::int64_t>(element_size(dt)), s.raw_data(), s.nbytes());
      }
      at += params_[k].numel();
    }
    KILN_CHECK(n <= INT32_MAX, "DataParallel: a bucket of {} elements", n);
    const int rc = MPI_Iallreduce(MPI_IN_PLACE, packed[b].raw_data(), static_cast<int>(n), dt == kFloat64 ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM,
                                  MPI_COMM_WORLD, &requests[b]);
    KILN_CHECK(rc == MPI_SUCCESS, "DataParallel: MPI_Iallreduce failed on rank {} (code {})", rank(), rc);
  }
  for (std::size_t done = 0; done < buckets_.size(); ++done) {
    int b = MPI_UNDEFINED;
    const int rc = MPI_Waitany(static_cast<int>(requests.size()), requests.data(), &b, MPI_STATUS_IGNORE);
    KILN_CHECK(rc == MPI_SUCCESS && b != MPI_UNDEFINED, "DataParallel: waiting for a gradient bucket failed on rank {}", rank());
    std::int64_t at = 0;
    const std::size_t esize = element_size(packed[static_cast<std::size_t>(b)].dtype());
    for (std::size_t k : buckets_[static_cast<std::size_t>(b)]) {
      Tensor g(params_[k].shape(), params_[k].dtype());
      std::memcpy(g.raw_data(), static_cast<char*>(packed[static_cast<std::size_t>(b)].raw_data()) + at * static_cast<std::int64_t>(esize), g.nbytes());
      params_[k].set_grad(g);
      at += params_[k].numel();
    }
  }
}

}  // namespace kiln::dist

#pragma once
// Data-parallel training (PyTorch's DistributedDataParallel, on MPI): every rank holds the whole model,
// trains on its own shard of each global batch, and the ranks' gradients are combined before each
// optimiser step, so every rank takes the same step.
//
//   kiln::dist::init();
//   kiln::dist::DataParallel ddp(model);            // rank 0's parameters on every rank
//   ... loss on this rank's rows ...; loss.backward();
//   ddp.reduce_gradients(my_rows / global_rows);    // sum over ranks of weight x gradient
//   optimizer.step();
//
// Note [Gradient buckets]: the parameters' gradients are packed, in reverse registration order (the
// order backward finishes them, roughly), into buckets of about bucket_bytes of one dtype, each reduced
// by one non-blocking all-reduce; the buckets are all in flight at once and unpacked as they complete.
// A parameter that received no gradient on a rank contributes zeros there (so every rank sends the same
// buckets). The weight lets ranks of different shard sizes (an uneven last batch) give the gradient of
// the global mean: each rank scales its own gradient by its share before the sum.

#include <cstddef>
#include <vector>

#include "layers/module.hpp"

namespace kiln::dist {

class DataParallel {
 public:
  explicit DataParallel(nn::Module& module, std::size_t bucket_bytes = std::size_t{4} << 20);
  /// Copies rank 0's parameters to every rank.
  void broadcast_parameters();
  /// Replaces each parameter's gradient by the sum over the ranks of `weight` times it.
  void reduce_gradients(double weight = 1.0);
  /// Bytes each reduce_gradients sends (the gradients' size).
  std::size_t bytes_per_step() const { return bytes_; }
  std::size_t buckets() const { return buckets_.size(); }

 private:
  nn::Module& module_;
  std::vector<Variable> params_;
  std::vector<std::vector<std::size_t>> buckets_;  // indices into params_
  std::vector<Tensor> packed_;                      // a buffer per bucket, kept from step to step
  std::size_t bytes_ = 0;
};

}  // namespace kiln::dist

#pragma once
// Data-parallel training (PyTorch's DistributedDataParallel, on MPI): every rank holds the whole model,
// trains on its own shard of each global batch, and the ranks' gradients are combined during backward,
// so every rank takes the same optimiser step.
//
//   kiln::dist::init();
//   auto ddp = std::make_shared<kiln::dist::DataParallel>(model);  // rank 0's parameters on every rank
//   ddp->set_share(my_rows / global_rows);   // optional: the default is 1 / world_size (the mean)
//   loss(ddp->forward(x_mine), y_mine).backward();   // returns with the gradients summed over the ranks
//   optimizer.step();
//
// Note [Gradient buckets]: the parameters' gradients are packed, in reverse registration order (the
// order backward finishes them, roughly), into buckets of about bucket_bytes of one dtype. A parameter's
// gradient-ready hook (Note [Gradient-ready hooks]) counts it done; when every parameter of the next
// bucket in order is done, that bucket is packed (each gradient times this rank's share) and its
// non-blocking all-reduce starts while backward goes on with earlier layers. Buckets start in the same
// order on every rank, as MPI requires of collectives, so a bucket waits for the ones before it. At the
// end of the pass (a tape callback) the buckets not started yet start (a parameter the pass did not reach
// sends its gradient as it is, zeros without one, so every rank sends the same buckets), all are waited
// for, and the sums are written back into the gradients in place. The buffers are kept from step to
// step: a step allocates nothing here (fresh pages cost a first touch each).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "dist/dist.hpp"
#include "layers/module.hpp"

namespace kiln::dist {

struct DataParallelOptions {
  /// About how many bytes of gradient each all-reduce carries (PyTorch's bucket_cap_mb).
  std::size_t bucket_bytes = std::size_t{4} << 20;
  /// Start buckets during backward (false: only synchronize() reduces, after backward).
  bool overlap = true;
};

/// What the last reduction did, for benchmarks and logs.
struct ReductionStats {
  std::size_t buckets = 0;
  std::size_t started_during_backward = 0;  ///< buckets whose all-reduce overlapped backward
  double wait_ms = 0;                        ///< time from the end of backward until the sums were in
  double overlap_ms = 0;                     ///< time from the first bucket's start to the end of backward
};

class DataParallel : public nn::Module {
 public:
  explicit DataParallel(std::shared_ptr<nn::Module> module, DataParallelOptions options = {});
  ~DataParallel() override;
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  /// The wrapped module's forward (through its operator(), so its hooks run). Richer signatures:
  /// call module() directly; the reduction works the same.
  Variable forward(const Variable& input) override;
  nn::Module& module() { return *module_; }
  std::shared_ptr<Module> clone() const override;

  /// Copies rank 0's parameters to every rank (the constructor does it once).
  void broadcast_parameters();
  /// This rank's weight in the sum of the coming backward's gradients: 1 / world_size by default (the
  /// mean, as PyTorch); rows or counted targets of this rank over the global batch's when shards differ.
  void set_share(double weight);
  double share() const { return share_; }
  /// Sums the gradients over the ranks now (each times its share): with overlap off after backward, or
  /// on a rank that has nothing to backpropagate this step while the others run backward.
  void synchronize();

  /// Within a NoSync's life backward reduces nothing and gradients accumulate on each rank (PyTorch's
  /// no_sync(), for gradient accumulation); the first backward after it reduces the accumulated sum.
  class NoSync {
   public:
    explicit NoSync(DataParallel& ddp) : ddp_(ddp), prev_(ddp.sync_) { ddp.sync_ = false; }
    ~NoSync() { ddp_.sync_ = prev_; }
    NoSync(const NoSync&) = delete;
    NoSync& operator=(const NoSync&) = delete;

   private:
    DataParallel& ddp_;
    bool prev_;
  };

  /// Bytes each reduction sends (the gradients' size).
  std::size_t bytes_per_step() const { return bytes_; }
  std::size_t buckets() const { return buckets_.size(); }
  const ReductionStats& last_reduction() const { return stats_; }
  /// Reductions done so far: a caller can tell whether a backward pass reached the parameters.
  std::uint64_t reductions() const { return reductions_; }

 private:
  void ready(std::size_t param);
  void begin_pass();
  void start_ready_buckets();
  void start(std::size_t bucket);
  void finish_pass();
  void abandon_pass() noexcept;
  void unpack(std::size_t bucket);
  void progress();

  std::shared_ptr<nn::Module> module_;
  DataParallelOptions options_;
  std::vector<Variable> params_;
  std::vector<Variable::HookHandle> hooks_;
  std::vector<std::vector<std::size_t>> buckets_;  // indices into params_
  std::vector<std::size_t> bucket_of_;             // params_ index -> bucket
  std::vector<Tensor> packed_;                      // a buffer per bucket, kept from step to step
  std::size_t bytes_ = 0;
  double share_;
  bool sync_ = true;

  // The pass being reduced.
  bool open_ = false;
  bool broken_ = false;  // a pass failed mid-reduction
  std::vector<std::size_t> missing_;  // per bucket: parameters not finished yet
  std::vector<char> done_;            // per parameter
  std::size_t next_ = 0;              // the next bucket to start
  struct Requests;                    // MPI_Request per bucket (MPI stays out of this header)
  std::unique_ptr<Requests> requests_;
  std::vector<char> unpacked_;
  ReductionStats stats_;
  double first_start_ = 0;  // steady clock, ms, of the pass's first bucket
  std::uint64_t reductions_ = 0;
};

}  // namespace kiln::dist

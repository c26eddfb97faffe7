// Collectives and data-parallel training, run alone and under `mpirun -np 2` and `-np 3`
// (tests/CMakeLists.txt): every rank runs every test; alone, the collectives are no-ops.

#include <gtest/gtest.h>

#include "dist/data_parallel.hpp"
#include "dist/dist.hpp"
#include "ops/ops.hpp"
#include "optim/optimizer.hpp"
#include "sequence/recurrent.hpp"
#include "layers/linear.hpp"
#include "layers/sequential.hpp"
#include "tensor/random.hpp"

namespace kiln::dist {
namespace {

TEST(Dist, AllReduceSumsAndBroadcastCopiesRootsValues) {
  const int n = world_size(), r = rank();
  EXPECT_EQ(launched(), n > 1 || std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr);
  Tensor f = full({3}, r + 1.0, kFloat64);
  all_reduce(f);
  EXPECT_EQ(f.to_vector(), std::vector<double>(3, n * (n + 1) / 2.0));
  Tensor i = full({2}, static_cast<double>(r), kInt64);
  all_reduce(i, ReduceOp::Max);
  EXPECT_EQ(i.to_vector(), std::vector<double>(2, n - 1.0));
  EXPECT_EQ(all_reduce(0.5 * (r + 1), ReduceOp::Min), 0.5);
  Tensor b = full({4}, static_cast<double>(r), kFloat32);
  broadcast(b, 0);
  EXPECT_EQ(b.to_vector(), std::vector<double>(4, 0.0));
  EXPECT_EQ(broadcast(r == 0 ? std::string("from rank 0") : std::string("other"), 0), "from rank 0");
  barrier();
}

struct Net {
  std::shared_ptr<nn::Sequential> model;
  Net() {
    manual_seed(11 + static_cast<std::uint64_t>(rank()));  // different on each rank: DataParallel copies rank 0's
    model = std::make_shared<nn::Sequential>();
    model->push_back(nn::make_recurrent("lstm", nn::RecurrentOptions(3, 5).batch_first(true).return_sequences(false)));
    model->push_back(std::make_shared<nn::Linear>(5, 2));
    model->to(kFloat64);
  }
};

// Rows [start, start + count) of x, for this rank's share of `rows` (the first rows % n ranks take one more).
std::pair<std::int64_t, std::int64_t> shard(std::int64_t rows) {
  const std::int64_t n = world_size(), r = rank(), base = rows / n, extra = rows % n;
  return {r * base + std::min(r, extra), base + (r < extra ? 1 : 0)};
}

Tensor rows_of(const Tensor& t, std::int64_t start, std::int64_t count) {
  Shape s = t.shape();
  const std::int64_t per = t.numel() / s[0];
  s[0] = count;
  return t.view_range(start * per, s).clone();
}

// N ranks, each on its shard of a global batch of 7 (uneven for 2 and 3 ranks), take the same Adam steps
// as one process on the whole batch, to 1e-12 in float64; repeated, the same bits. With overlap (buckets
// of 64 bytes: the head's gradient buckets start while the LSTM's backward runs) and without.
void train_as_one(const DataParallelOptions& options) {
  Net dp, alone;
  auto ddp = std::make_shared<DataParallel>(dp.model, options);
  EXPECT_GT(ddp->bytes_per_step(), 0u);
  // The single-process reference starts from rank 0's weights too.
  for (const auto& [name, p] : dp.model->named_parameters()) alone.model->parameter(name).set_value(p.value().clone());
  optim::Adam opt_dp(ddp->parameters(), optim::AdamOptions(0.01));
  optim::Adam opt_alone(alone.model->parameters(), optim::AdamOptions(0.01));
  Generator data(5);  // the same global batches on every rank
  for (int step = 0; step < 4; ++step) {
    const Tensor x = randn({7, 6, 3}, kFloat64, &data), y = randn({7, 2}, kFloat64, &data);
    const auto [start, count] = shard(7);
    opt_dp.zero_grad();
    ddp->set_share(static_cast<double>(count) / 7.0);
    mse_loss(ddp->forward(Variable(rows_of(x, start, count))), Variable(rows_of(y, start, count))).backward();
    if (!options.overlap) ddp->synchronize();
    EXPECT_EQ(ddp->reductions(), static_cast<std::uint64_t>(step + 1));
    if (options.overlap && distributed()) EXPECT_GT(ddp->last_reduction().started_during_backward, 0u);
    opt_dp.step();
    opt_alone.zero_grad();
    mse_loss(alone.model->forward(Variable(x)), Variable(y)).backward();
    opt_alone.step();
  }
  for (const auto& [name, p] : dp.model->named_parameters()) {
    const auto a = p.value().to_vector(), b = alone.model->parameter(name).value().to_vector();
    for (std::size_t k = 0; k < a.size(); ++k) EXPECT_NEAR(a[k], b[k], 1e-12) << name << "[" << k << "] on rank " << rank();
    Tensor mine = p.value().clone(), max = p.value().clone();
    all_reduce(max, ReduceOp::Max);
    EXPECT_EQ(mine.to_vector(), max.to_vector()) << name << ": every rank holds the same bits";
  }
}

TEST(DataParallel, RanksOnShardsTrainAsOneProcessOnTheWholeBatch) {
  DataParallelOptions overlap;
  overlap.bucket_bytes = 64;
  train_as_one(overlap);
  DataParallelOptions after;
  after.overlap = false;
  train_as_one(after);
}

// The wrapper is a module: its parameters are the wrapped one's, named as PyTorch's DDP names them.
TEST(DataParallel, IsAModuleOverTheWrappedOne) {
  Net net;
  DataParallel ddp(net.model);
  const auto inner = net.model->named_parameters(), outer = ddp.named_parameters();
  ASSERT_EQ(inner.size(), outer.size());
  for (std::size_t k = 0; k < inner.size(); ++k) {
    EXPECT_EQ(outer[k].first, "module." + inner[k].first);
    EXPECT_TRUE(outer[k].second.is_same(inner[k].second));
  }
  EXPECT_THROW(ddp.clone(), Error);
  EXPECT_THROW(ddp.set_share(1.5), Error);
}

// Gradient accumulation (PyTorch's no_sync): two half-batches backpropagated under NoSync, then the
// first backward after it, reduce as one pass over the whole; a rank with nothing to backpropagate takes
// part through synchronize().
TEST(DataParallel, NoSyncAccumulatesAndSynchronizeStandsInForAnEmptyShard) {
  Net dp, alone;
  DataParallelOptions options;
  options.bucket_bytes = 256;
  DataParallel ddp(dp.model, options);
  for (const auto& [name, p] : dp.model->named_parameters()) alone.model->parameter(name).set_value(p.value().clone());
  Generator data(9);
  const Tensor x = randn({6, 4, 3}, kFloat64, &data), y = randn({6, 2}, kFloat64, &data);
  // Rank 0 holds no rows of this batch; the others share the 6 rows.
  const std::int64_t n = world_size(), r = rank();
  const std::int64_t workers = std::max<std::int64_t>(1, n - 1), w = n > 1 ? r - 1 : 0;
  const std::int64_t start = w * (6 / workers) + std::min(w, 6 % workers), count = 6 / workers + (w < 6 % workers ? 1 : 0);
  ddp.set_share(n > 1 && r == 0 ? 0.0 : static_cast<double>(count) / 6.0);
  const std::uint64_t before = ddp.reductions();
  if (n > 1 && r == 0) {
    ddp.synchronize();
  } else {
    const std::int64_t half = count / 2;
    {
      DataParallel::NoSync local(ddp);
      // sum of squared errors over the first rows, scaled so the two parts add to this rank's mean
      (mse_loss(ddp.forward(Variable(rows_of(x, start, half))), Variable(rows_of(y, start, half))) *
       (static_cast<double>(half) / static_cast<double>(count))).backward();
    }
    EXPECT_EQ(ddp.reductions(), before);
    (mse_loss(ddp.forward(Variable(rows_of(x, start + half, count - half))), Variable(rows_of(y, start + half, count - half))) *
     (static_cast<double>(count - half) / static_cast<double>(count))).backward();
  }
  EXPECT_EQ(ddp.reductions(), before + 1);
  mse_loss(alone.model->forward(Variable(x)), Variable(y)).backward();
  for (const auto& [name, p] : dp.model->named_parameters()) {
    const auto a = p.grad().to_vector(), b = alone.model->parameter(name).grad().to_vector();
    ASSERT_EQ(a.size(), b.size()) << name;
    for (std::size_t k = 0; k < a.size(); ++k) EXPECT_NEAR(a[k], b[k], 1e-12) << name << "[" << k << "] on rank " << rank();
  }
}

// A backward pass that fails after its first buckets started leaves the ranks out of step: the next
// reduction refuses, saying so, instead of summing mismatched buckets (alone: nothing was sent, but the
// rule is the same).
TEST(DataParallel, AFailedPassIsRefusedAfterwards) {
  Net net;
  DataParallelOptions options;
  options.bucket_bytes = 64;
  DataParallel ddp(net.model, options);
  const auto children = net.model->named_children();  // the LSTM, then the linear head
  Variable h = (*children[0].second)(Variable(randn({2, 4, 3}, kFloat64))) * 1.0;
  h.register_hook([](const Tensor&) -> Tensor { throw Error("a kernel failed on purpose"); });
  // The walk finishes the head's parameters, whose buckets start, then fails at h.
  EXPECT_THROW(sum((*children[1].second)(h)).backward(), Error);
  if (distributed()) EXPECT_GT(ddp.last_reduction().started_during_backward, 0u);
  try {
    ddp.synchronize();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("an earlier backward pass failed while its gradients were being reduced"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace kiln::dist

int main(int argc, char** argv) {
  kiln::dist::init();
  ::testing::InitGoogleTest(&argc, argv);
  if (kiln::dist::rank() != 0) {  // one rank prints
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int failed = RUN_ALL_TESTS();
  return static_cast<int>(kiln::dist::all_reduce(static_cast<double>(failed), kiln::dist::ReduceOp::Max));
}

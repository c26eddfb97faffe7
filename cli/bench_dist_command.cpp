// kiln bench-dist: data-parallel scaling of a recurrent layer's training step (dist::DataParallel), run
// alone and under `mpirun -np N` (benchmarks/dist_scaling.sh runs both): each rank trains on a batch of
// the configuration's size, so N ranks take a global batch N times as large; reports sequences per second,
// the share of each step spent in the gradients' all-reduce, and the bytes reduced per step.

#include <algorithm>
#include <chrono>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench/bench_model.hpp"
#include "cli/commands.hpp"
#include "dist/data_parallel.hpp"
#include "dist/dist.hpp"
#include "io/atomic_file.hpp"
#include "ops/ops.hpp"
#include "optim/optimizer.hpp"
#include "sequence/recurrent.hpp"
#include "tensor/parallel.hpp"
#include "tensor/random.hpp"

namespace kiln::cli {
namespace {

struct Args {
  std::string cell = "lstm", config = "a", impl = "fused", json;
  int steps = 20, threads = 1;
};

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

void run(const Args& a) {
  set_num_threads(a.threads);
  const auto& all = bench::configs();
  const auto it = std::find_if(all.begin(), all.end(), [&](const bench::Config& c) { return c.name == a.config; });
  KILN_CHECK(it != all.end() && !it->is_transformer(), "bench-dist: unknown recurrent configuration '{}' (a, b, c or d)", a.config);
  const bench::Config& c = *it;
  manual_seed(1);
  auto layer = nn::make_recurrent(a.cell, nn::RecurrentOptions(c.input, c.hidden).num_layers(c.layers).bidirectional(c.bidirectional)
                                              .impl(a.impl == "generic" ? nn::Impl::Generic : nn::Impl::Fused));
  dist::DataParallel ddp(*layer);
  optim::SGD opt(layer->parameters(), optim::SGDOptions(1e-6));
  Generator data(100 + static_cast<std::uint64_t>(dist::rank()));  // each rank its own rows
  const Variable x(randn({c.seq, c.batch, c.input}, kFloat32, &data));
  double step_ms = 0, comm_ms = 0, compute_ms = 0;
  const int warmup = 3;
  for (int s = 0; s < warmup + a.steps; ++s) {
    dist::barrier();  // every rank starts the step together: the wait inside the all-reduce is communication
    const auto t0 = Clock::now();
    opt.zero_grad();
    sum(layer->forward(x)).backward();
    const auto t1 = Clock::now();
    const double compute = ms_since(t0);
    ddp.reduce_gradients(1.0 / dist::world_size());
    const double comm = ms_since(t1);
    opt.step();
    const double step = ms_since(t0);
    if (s >= warmup) step_ms += step, comm_ms += comm, compute_ms += compute;
  }
  // The slowest rank sets the pace.
  step_ms = dist::all_reduce(step_ms / a.steps, dist::ReduceOp::Max);
  comm_ms = dist::all_reduce(comm_ms / a.steps, dist::ReduceOp::Max);
  const double compute_min = dist::all_reduce(compute_ms / a.steps, dist::ReduceOp::Min);
  compute_ms = dist::all_reduce(compute_ms / a.steps, dist::ReduceOp::Max);
  if (dist::rank() != 0) return;
  const int n = dist::world_size();
  const double seqs = n * c.batch / (step_ms / 1000);
  fmt::print("{} ({}) {} x {} rank(s), {} thread(s) each: {:.2f} ms/step (forward and backward {:.2f}-{:.2f} ms over the ranks), "
             "{:.0f} sequences/s, all-reduce {:.2f} ms ({:.1f}% of the step), {:.2f} MB reduced per step\n",
             a.cell, c.describe(), a.impl, n, a.threads, step_ms, compute_min, compute_ms, seqs, comm_ms, 100 * comm_ms / step_ms,
             ddp.bytes_per_step() / 1e6);
  if (!a.json.empty())
    io::write_file_atomic(a.json, nlohmann::json{{"cell", a.cell}, {"config", c.name}, {"impl", a.impl}, {"ranks", n},
                                                 {"threads", a.threads}, {"ms_per_step", step_ms}, {"sequences_per_second", seqs},
                                                 {"allreduce_ms", comm_ms}, {"compute_ms", compute_ms}, {"bytes_per_step", ddp.bytes_per_step()}}.dump(2) + "\n");
}

}  // namespace

void add_bench_dist_command(CLI::App& app) {
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("bench-dist", "Data-parallel scaling of a recurrent training step: run alone and under mpirun -np N");
  cmd->add_option("--cell", a->cell, "A registered cell");
  cmd->add_option("--config", a->config, "a, b, c or d (kiln bench's configurations; the batch per rank)");
  cmd->add_option("--impl", a->impl, "fused or generic")->check(CLI::IsMember({"fused", "generic"}));
  cmd->add_option("--steps", a->steps, "Timed steps (after 3 warm-up steps)")->check(CLI::Range(1, 100000));
  cmd->add_option("--threads", a->threads, "Threads per rank")->check(CLI::Range(1, 256));
  cmd->add_option("--json", a->json, "Also write the figures to this file");
  cmd->callback([a] { run(*a); });
}

}  // namespace kiln::cli

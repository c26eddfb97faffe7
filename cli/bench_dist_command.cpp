// kiln bench-dist: data-parallel scaling of a recurrent layer's training step (dist::DataParallel), run
// alone and under `mpirun -np N` (benchmarks/dist_scaling.sh runs both): each rank trains on a batch of
// the configuration's size, so N ranks take a global batch N times as large; reports sequences per second,
// the share of each step spent waiting for the gradients' all-reduce after backward (with overlap, the
// buckets backward finished early are already under way: Note [Gradient buckets]), and the bytes reduced
// per step.

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
  bool overlap = true;
  double bucket_mb = 4;
};

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

void run(const Args& a) {
  set_num_threads(a.threads);
  const auto& all = bench::configs();
  const auto it = std::find_if(all.begin(), all.end(), [&](const bench::Config& c) { return c.name == a.config; });
  KILN_CHECK(it == all.end() || !it->is_transformer(), "bench-dist: configuration '{}' is not recurrent (a, b, c, d or B,T,I,H[,L[,bidir]])",
             a.config);
  const bench::Config c = it != all.end() ? *it : bench::parse_shape(a.config);
  manual_seed(1);
  auto layer = nn::make_recurrent(a.cell, nn::RecurrentOptions(c.input, c.hidden).num_layers(c.layers).bidirectional(c.bidirectional)
                                              .impl(a.impl == "generic" ? nn::Impl::Generic : nn::Impl::Fused));
  dist::DataParallelOptions options;
  options.overlap = a.overlap;
  options.bucket_bytes = static_cast<std::size_t>(a.bucket_mb * 1e6);
  dist::DataParallel ddp(layer, options);
  optim::SGD opt(layer->parameters(), optim::SGDOptions(1e-6));
  Generator data(100 + static_cast<std::uint64_t>(dist::rank()));  // each rank its own rows
  const Variable x(randn({c.seq, c.batch, c.input}, kFloat32, &data));
  double step_ms = 0, comm_ms = 0, compute_ms = 0, overlapped = 0, window_ms = 0;
  const int warmup = 3;
  for (int s = 0; s < warmup + a.steps; ++s) {
    dist::barrier();  // every rank starts the step together: the wait inside the all-reduce is communication
    const auto t0 = Clock::now();
    opt.zero_grad();
    sum(ddp.forward(x)).backward();  // with overlap, reduced by the time it returns
    const auto t1 = Clock::now();
    if (!a.overlap) ddp.synchronize();
    const double comm = a.overlap ? ddp.last_reduction().wait_ms : ms_since(t1);
    const double compute = ms_since(t0) - comm;
    opt.step();
    const double step = ms_since(t0);
    if (s >= warmup)
      step_ms += step, comm_ms += comm, compute_ms += compute,
          overlapped += static_cast<double>(ddp.last_reduction().started_during_backward), window_ms += ddp.last_reduction().overlap_ms;
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
             "{:.0f} sequences/s, waiting for the all-reduce after backward {:.2f} ms ({:.1f}% of the step), {:.2f} MB reduced per "
             "step in {} bucket(s), {:.1f} started during backward, the first {:.2f} ms before its end (overlap {})\n",
             a.cell, c.describe(), a.impl, n, a.threads, step_ms, compute_min, compute_ms, seqs, comm_ms, 100 * comm_ms / step_ms,
             ddp.bytes_per_step() / 1e6, ddp.buckets(), overlapped / a.steps, window_ms / a.steps, a.overlap ? "on" : "off");
  if (!a.json.empty())
    io::write_file_atomic(a.json, nlohmann::json{{"cell", a.cell}, {"config", c.name}, {"impl", a.impl}, {"ranks", n},
                                                 {"threads", a.threads}, {"ms_per_step", step_ms}, {"sequences_per_second", seqs},
                                                 {"allreduce_ms", comm_ms}, {"compute_ms", compute_ms}, {"bytes_per_step", ddp.bytes_per_step()},
                                                 {"overlap", a.overlap}, {"buckets", ddp.buckets()},
                                                 {"buckets_started_during_backward", overlapped / a.steps},
                                                 {"overlap_window_ms", window_ms / a.steps}}.dump(2) + "\n");
}

}  // namespace

void add_bench_dist_command(CLI::App& app) {
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("bench-dist", "Data-parallel scaling of a recurrent training step: run alone and under mpirun -np N");
  cmd->add_option("--cell", a->cell, "A registered cell");
  cmd->add_option("--config", a->config, "a, b, c, d (kiln bench's configurations) or B,T,I,H[,L[,bidir]]; B is the batch per rank");
  cmd->add_option("--impl", a->impl, "fused or generic")->check(CLI::IsMember({"fused", "generic"}));
  cmd->add_option("--steps", a->steps, "Timed steps (after 3 warm-up steps)")->check(CLI::Range(1, 100000));
  cmd->add_option("--threads", a->threads, "Threads per rank")->check(CLI::Range(1, 256));
  cmd->add_option("--overlap", a->overlap, "Start each gradient bucket's all-reduce as backward finishes it (true) or after backward (false)");
  cmd->add_option("--bucket-mb", a->bucket_mb, "Megabytes of gradient per all-reduce")->check(CLI::Range(0.001, 1e6));
  cmd->add_option("--json", a->json, "Also write the figures to this file");
  cmd->callback([a] { run(*a); });
}

}  // namespace kiln::cli

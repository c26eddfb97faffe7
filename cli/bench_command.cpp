// kiln bench: generic graph, compiled and fused kernels, libtorch and oneDNN (when built in) on the same
// recurrent layers,
// in one process and environment; ms per forward and per training step, GFLOP/s, the fraction of the
// sgemm ceiling measured in the same run, and peak memory, for each thread count.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <map>

#include <malloc.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench/bench_model.hpp"
#include "autograd/tape.hpp"
#include "bench/heap_tracker.hpp"
#include "cli/commands.hpp"
#include "io/atomic_file.hpp"
#include "ops/gemm.hpp"
#include "plugins/registry.hpp"
#include "tensor/parallel.hpp"
#include "tensor/random.hpp"
#include "tensor/storage.hpp"

namespace kiln::cli {
namespace {

struct BenchArgs {
  std::vector<std::string> cells{"lstm"};
  std::vector<std::string> configs{"a", "b", "c", "d", "t"};
  std::vector<int> threads{1, 2};
  std::vector<std::string> impls{"generic", "fused", "libtorch"};
  std::vector<std::string> loads;
  std::vector<std::string> shapes;
  bool configs_given = false;  // --shape alone runs only the shapes
  bool no_input_grad = false;
  double min_time = 1.0;
  std::string json;
};

using Clock = std::chrono::steady_clock;

// Median ms of f over at least 3 calls and min_time seconds, after 3 warm-up calls: allocators fill
// their caches in the first calls, and first touch of fresh pages is slow here (10 us per 4 KiB).
std::pair<double, int> time_ms(const std::function<void()>& f, double min_time) {
  for (int i = 0; i < 3; ++i) f();
  std::vector<double> ms;
  const auto start = Clock::now();
  while (ms.size() < 3 || (std::chrono::duration<double>(Clock::now() - start).count() < min_time && ms.size() < 1000)) {
    const auto t0 = Clock::now();
    f();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], static_cast<int>(ms.size())};
}


// Note [Interleaved rounds]: the sides of a ratio are timed in turns, a few rounds each, not one after
// the other: these machines have phases, seconds long, in which everything runs 20-30% slower, and a
// ratio of two runs taken apart swung by as much. Each side's figure is the median of its calls.
std::vector<std::pair<double, int>> time_interleaved(const std::vector<std::function<void()>>& fs, double min_time) {
  constexpr int kRounds = 5;
  for (const auto& f : fs)
    for (int i = 0; i < 3; ++i) f();
  std::vector<std::vector<double>> ms(fs.size());
  for (int round = 0; round < kRounds; ++round)
    for (std::size_t i = 0; i < fs.size(); ++i) {
      const auto start = Clock::now();
      do {
        const auto t0 = Clock::now();
        fs[i]();
        ms[i].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      } while (std::chrono::duration<double>(Clock::now() - start).count() < min_time / kRounds && ms[i].size() < 1000);
    }
  std::vector<std::pair<double, int>> out;
  for (auto& m : ms) {
    std::sort(m.begin(), m.end());
    out.emplace_back(m[m.size() / 2], static_cast<int>(m.size()));
  }
  return out;
}

// The ceiling: a 1024^3 sgemm through Kiln's GEMM with the current thread count.
struct Sgemm {
  static constexpr std::int64_t n = 1024;
  Tensor a = uniform({n, n}), b = uniform({n, n}), c{{n, n}, kFloat32};
  void operator()() { blas::gemm<float>(false, false, n, n, n, 1.f, a.data<float>(), n, b.data<float>(), n, 0.f, c.data<float>(), n); }
  static double gflops(double ms) { return 2.0 * n * n * n / (ms * 1e6); }
};

double sgemm_ceiling(double min_time) {
  Sgemm sgemm;
  return Sgemm::gflops(time_ms([&] { sgemm(); }, std::max(0.2, min_time / 4)).first);
}

struct Row {
  std::string cell, config, impl, note;
  int threads = 1, iterations = 0;
  double forward_ms = 0, step_ms = 0, gflops = 0, ceiling_gflops = 0, ceiling_fraction = 0, peak_mib = 0;
  double tensors_mib = -1;  // Kiln's sides: most bytes in live tensors during the steps (Kiln's allocator)
  bool ran = false;
};

int run(const BenchArgs& a) {
  KILN_CHECK(std::isfinite(a.min_time) && a.min_time >= 0 && a.min_time <= 3600,
             "bench: --min-time must be a number of seconds from 0 to 3600, got {}", a.min_time);
  for (const auto& p : a.loads) plugins::load_plugin(p);
  std::vector<bench::Config> configs;
  for (const auto& name : a.shapes.empty() || a.configs_given ? a.configs : std::vector<std::string>{}) {
    auto it = std::find_if(bench::configs().begin(), bench::configs().end(), [&](const bench::Config& c) { return c.name == name; });
    KILN_CHECK(it != bench::configs().end(), "bench: unknown configuration '{}' (a, b, c, d or t; --shape B,T,I,H for your own)", name);
    configs.push_back(*it);
  }
  for (const auto& shape : a.shapes) configs.push_back(bench::parse_shape(shape));
  for (auto& c : configs) c.input_grad = !a.no_input_grad;
  for (const auto& cell : a.cells) bench::check_model(cell);
  // Outputs are checked before anything runs: a benchmark must not end in an unwritable file.
  if (!a.json.empty() && a.json != "-") io::check_writable(a.json);
  // Note [Fair allocators]: glibc serves big blocks with mmap and returns them on free, so an
  // allocator without a cache (libtorch's default CPU allocator) pays first-touch page faults (10 us
  // per 4 KiB here) on every step, and its timings swing 2x with glibc's adaptive threshold. Keeping
  // freed memory in the heap gives every side its best case.
  const bool tuned = mallopt(M_MMAP_MAX, 0) == 1 && mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
  const bool peak_ok = bench::heap_tracking();
  const std::string torch = bench::torch_version(), onednn = bench::onednn_version();
  fmt::print("kiln bench: OpenBLAS core {}; {}; {}; forward = forward with autograd recording (oneDNN: forward_training),\n"
             "step = forward + backward with weight gradients and {}; peak MiB = most heap in use during training steps\n"
             "beyond the model's own{}; tensors MiB = most bytes in Kiln's live tensors then (its allocator's cache left out)\n",
             blas::core_name(), torch.empty() ? "libtorch not built in" : torch, onednn.empty() ? "oneDNN not built in" : onednn,
             a.no_input_grad ? "no dX (--no-input-grad: Kiln and libtorch skip it, oneDNN computes it always)" : "dX",
             peak_ok ? "" : " (not tracked in this build)");
  if (tuned) fmt::print("glibc malloc keeps freed memory (no mmap, no trim), so no side pays page faults each step\n");
  std::map<int, double> ceiling;
  for (int t : a.threads) {
    set_num_threads(t);
    ceiling[t] = sgemm_ceiling(a.min_time);
    fmt::print("sgemm ceiling with {} thread(s): {:.1f} GFLOP/s (1024^3, measured now; %sgemm uses the ceiling measured in "
               "each row group's own timing rounds)\n", t, ceiling[t]);
  }
  fmt::print("\n{:<17} {:<3} {:>3} {:<9} {:>10} {:>10} {:>8} {:>7} {:>9} {:>11}  {}\n", "cell", "cfg", "thr", "impl", "fwd ms",
             "step ms", "GFLOP/s", "%sgemm", "peak MiB", "tensors MiB", "shape");
  std::vector<Row> rows;
  for (const auto& cell : a.cells)
    for (const auto& c : configs)
      for (int t : a.threads) {
        if (!bench::runs_on(cell, c)) continue;
        set_num_threads(t);
        bench::set_torch_threads(t);
        bench::set_onednn_threads(t);
        // Every side built first, then its peak memory alone, then all timed in interleaved rounds.
        std::vector<Row> here;
        std::vector<std::unique_ptr<bench::Model>> models;
        for (const auto& impl : a.impls) {
          Row r{cell, c.name, impl};
          r.threads = t;
          models.push_back(impl == "libtorch" ? bench::make_torch(cell, c, &r.note)
                           : impl == "onednn" ? bench::make_onednn(cell, c, &r.note)
                                              : bench::make_kiln(cell, c, impl, &r.note));
          here.push_back(r);
        }
        std::vector<std::function<void()>> steps, forwards;
        std::vector<std::size_t> which;
        for (std::size_t i = 0; i < models.size(); ++i) {
          if (!models[i]) continue;
          // Peak heap in use during training steps, above what the models hold before the first. One step
          // first, unmeasured: what a side does once per process (a compiled cell's proof) is not a step's.
          // The tape is cleared first: the graph of an earlier forward would otherwise be freed during
          // these steps and lower the figure.
          models[i]->train_step();
          Tape::current().clear();
          empty_cache();
          const std::int64_t base = bench::heap_in_use(), tensors_base = memory_stats().allocated_bytes;
          bench::reset_heap_peak();
          reset_peak_memory_stats();
          for (int k = 0; k < 3; ++k) models[i]->train_step();
          here[i].peak_mib = static_cast<double>(bench::heap_peak() - base) / (1 << 20);
          if (here[i].impl != "libtorch" && here[i].impl != "onednn")
            here[i].tensors_mib = static_cast<double>(memory_stats().peak_allocated_bytes - tensors_base) / (1 << 20);
          bench::Model* m = models[i].get();
          steps.push_back([m] { m->train_step(); });
          forwards.push_back([m] { m->forward(); });
          which.push_back(i);
        }
        // The sgemm ceiling takes its turn in the same rounds: a row's fraction of it does not depend on
        // which of the machine's phases the start-up measurement fell in.
        auto sgemm = std::make_shared<Sgemm>();
        steps.push_back([sgemm] { (*sgemm)(); });
        const auto step_times = time_interleaved(steps, a.min_time * static_cast<double>(steps.size()));
        const double ceiling_here = Sgemm::gflops(step_times.back().first);
        const auto forward_times = time_interleaved(forwards, a.min_time / 2 * static_cast<double>(forwards.size()));
        for (std::size_t k = 0; k < which.size(); ++k) {
          Row& r = here[which[k]];
          r.forward_ms = forward_times[k].first;
          r.step_ms = step_times[k].first;
          r.iterations = step_times[k].second;
          r.gflops = 3 * bench::forward_flops(cell, c) / (r.step_ms * 1e6);
          r.ceiling_gflops = ceiling_here;
          r.ceiling_fraction = r.gflops / ceiling_here;
          r.ran = true;
        }
        for (const Row& r : here) {
          if (r.ran)
            fmt::print("{:<17} {:<3} {:>3} {:<9} {:>10.2f} {:>10.2f} {:>8.1f} {:>6.0f}% {:>9.1f} {:>11}  {}\n", cell, c.name, t, r.impl,
                       r.forward_ms, r.step_ms, r.gflops, 100 * r.ceiling_fraction, r.peak_mib,
                       r.tensors_mib < 0 ? std::string("-") : fmt::format("{:.1f}", r.tensors_mib), c.describe());
          else
            fmt::print("{:<17} {:<3} {:>3} {:<9} {:>10} {:>10} {:>8} {:>7} {:>9} {:>11}  ({})\n", cell, c.name, t, r.impl, "-", "-", "-",
                       "-", "-", "-", r.note);
          rows.push_back(r);
        }
        std::fflush(stdout);
      }

  if (std::any_of(rows.begin(), rows.end(), [](const Row& r) { return r.ran && r.ceiling_fraction > 1; }))
    fmt::print("\n%sgemm above 100%: the ceiling is a 1024^3 sgemm, whose operands stream from memory; a small layer's GEMMs\n"
               "keep theirs in cache and can run faster than it (the FMA units' own peak is the true bound)\n");

  // Ratios of training-step times, both sides measured above in this process.
  nlohmann::json ratios = nlohmann::json::array();
  auto find = [&](const std::string& cell, const std::string& cfg, int t, const std::string& impl) -> const Row* {
    for (const auto& r : rows)
      if (r.ran && r.cell == cell && r.config == cfg && r.threads == t && r.impl == impl) return &r;
    return nullptr;
  };
  fmt::print("\nspeed-ups (training step, higher is faster)\n");
  for (const auto& cell : a.cells)
    for (const auto& c : configs)
      for (int t : a.threads) {
        std::string line = fmt::format("  {:<17} {} {} thread(s):", cell, c.name, t);
        nlohmann::json j{{"cell", cell}, {"config", c.name}, {"threads", t}};
        bool any = false;
        for (const char* mine : {"fused", "compiled"}) {
          const Row* fast = find(cell, c.name, t, mine);
          if (fast == nullptr) continue;
          for (const char* other : {"generic", "fused", "libtorch", "onednn"})
            if (const Row* o = std::string(other) == mine ? nullptr : find(cell, c.name, t, other)) {
              if (std::string(mine) == "fused" && std::string(other) == "fused") continue;
              line += fmt::format("  {} {:.2f}x {}", mine, o->step_ms / fast->step_ms, other);
              j[std::string(mine) + "_vs_" + other] = o->step_ms / fast->step_ms;
              if ((std::string(other) == "libtorch" || std::string(other) == "onednn") && o->peak_mib > 0)
                line += fmt::format(" (peak memory {:.0f} vs {:.0f} MiB)", fast->peak_mib, o->peak_mib);
              any = true;
            }
        }
        if (!any) continue;
        fmt::print("{}\n", line);
        ratios.push_back(j);
      }

  if (!a.json.empty()) {
    nlohmann::json out;
    out["machine"] = {{"openblas_core", blas::core_name()}, {"libtorch", torch}, {"onednn", onednn},
                      {"ceiling_gflops", nlohmann::json::object()}};
    out["input_grad"] = !a.no_input_grad;
    for (const auto& [t, g] : ceiling) out["machine"]["ceiling_gflops"][std::to_string(t)] = g;
    out["results"] = nlohmann::json::array();
    for (const auto& r : rows) {
      nlohmann::json j{{"cell", r.cell}, {"config", r.config}, {"threads", r.threads}, {"impl", r.impl}, {"ran", r.ran}};
      if (r.ran)
        j.update({{"forward_ms", r.forward_ms}, {"step_ms", r.step_ms}, {"gflops", r.gflops}, {"ceiling_gflops", r.ceiling_gflops},
                  {"ceiling_fraction", r.ceiling_fraction},
                  {"peak_mib", r.peak_mib}, {"tensors_mib", r.tensors_mib < 0 ? nlohmann::json() : nlohmann::json(r.tensors_mib)},
                  {"iterations", r.iterations}});
      else
        j["why_not"] = r.note;
      out["results"].push_back(j);
    }
    out["ratios"] = ratios;
    if (a.json == "-")
      fmt::print("{}\n", out.dump(2));
    else {
      io::write_file_atomic(a.json, out.dump(2) + "\n");
      fmt::print("written {}\n", a.json);
    }
  }
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "Time recurrent layers and a Transformer encoder layer on the generic graph, "
                                     "the compiled and fused kernels, libtorch and oneDNN, side by side in one process");
  cmd->add_option("--cell", a->cells, "Registered cells (`kiln plugins` lists them; --load adds a library's), or "
                  "transformer_encoder (config t)")
      ->capture_default_str();
  cmd->add_option("--config", a->configs, bench::configs_help())
      ->capture_default_str()
      ->delimiter(',');
  cmd->add_option("--shape", a->shapes, "A recurrent configuration of your own, B,T,I,H[,L[,bidir]] (batch, steps, input, "
                  "hidden, layers, bidirectional 0/1); repeatable; runs with --config")
      ->take_all();
  cmd->add_option("--threads", a->threads, "Thread counts")
      ->capture_default_str()
      ->delimiter(',')
      ->check(CLI::Range(1, kMaxThreads));
  cmd->add_option("--impl", a->impls, "Implementations: generic, fused (hand-written, else compiled), compiled (the cell "
                  "compiled from its step), libtorch, onednn (LSTM, GRU, RNN; when built in)")
      ->capture_default_str()
      ->delimiter(',')
      ->check(CLI::IsMember({"generic", "fused", "compiled", "libtorch", "onednn"}));
  cmd->add_flag("--no-input-grad", a->no_input_grad, "The input needs no gradient, as data fed to a first layer: Kiln and "
               "libtorch skip dX (oneDNN's backward always computes it)");
  cmd->add_option("--load", a->loads, "Plugin libraries to load first")->check(CLI::ExistingFile);
  cmd->add_option("--min-time", a->min_time, "Seconds to time each measurement (at least 3 calls)")->capture_default_str();
  cmd->add_option("--json", a->json, "Also write the figures as JSON to this file ('-': stdout)");
  cmd->callback([a, cmd] {
    a->configs_given = cmd->count("--config") > 0;
    if (const int rc = run(*a); rc != 0) throw CLI::RuntimeError(rc);
  });
  cmd->get_option("--cell")->delimiter(',');
}

}  // namespace kiln::cli

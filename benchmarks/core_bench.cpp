// Core benchmarks (issue 2): tape overhead per op, matmul against raw sgemm, elementwise tanh and
// sigmoid against a plain xsimd loop. After the runs, a summary prints each ratio from this process.
//
//   build/benchmarks/kiln_bench_core [--benchmark_filter=Matmul]

#include <cblas.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <xsimd/xsimd.hpp>

#include "autograd/grad_mode.hpp"
#include "autograd/tape.hpp"
#include "ops/gemm.hpp"
#include "ops/ops.hpp"
#include "tensor/parallel.hpp"

namespace {

using kiln::Variable;

// ---- Tape overhead: a chain of 1000 elementwise ops on 16 floats, forward + backward ----------
constexpr int kChain = 1000;

void BM_TapeChain(benchmark::State& state) {
  Variable x(kiln::uniform({16}, -1, 1), true);
  Variable w(kiln::uniform({16}, 0.9, 1.1), true);
  for (auto _ : state) {
    Variable y = x;
    for (int i = 0; i < kChain; ++i) y = (i % 2 == 0) ? kiln::tanh(y) : kiln::mul(y, w);
    kiln::sum(y).backward();
    x.zero_grad();
    w.zero_grad();
  }
  state.counters["per_op"] = benchmark::Counter(static_cast<double>(state.iterations()) * (kChain + 1),
                                                benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_TapeChain)->Unit(benchmark::kMicrosecond);

void BM_TapeChainForwardOnly(benchmark::State& state) {
  Variable x(kiln::uniform({16}, -1, 1), true);
  Variable w(kiln::uniform({16}, 0.9, 1.1), true);
  for (auto _ : state) {
    Variable y = x;
    for (int i = 0; i < kChain; ++i) y = (i % 2 == 0) ? kiln::tanh(y) : kiln::mul(y, w);
    benchmark::DoNotOptimize(y);
    kiln::Tape::current().clear();
  }
  state.counters["per_op"] = benchmark::Counter(static_cast<double>(state.iterations()) * kChain,
                                                benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_TapeChainForwardOnly)->Unit(benchmark::kMicrosecond);

// ---- matmul through Kiln against raw sgemm ----------------------------------------------------
void set_flops(benchmark::State& state, double m, double n, double k) {
  state.counters["GFLOP"] = benchmark::Counter(2 * m * n * k * static_cast<double>(state.iterations()) / 1e9,
                                                 benchmark::Counter::kIsRate);
}

void BM_MatmulKiln(benchmark::State& state) {
  const auto m = state.range(0), k = state.range(1), n = state.range(2);
  kiln::set_num_threads(static_cast<int>(state.range(3)));
  const Variable a(kiln::uniform({m, k})), b(kiln::uniform({k, n}));
  for (auto _ : state) benchmark::DoNotOptimize(kiln::matmul(a, b));
  set_flops(state, m, n, k);
}

void BM_MatmulSgemm(benchmark::State& state) {
  const auto m = state.range(0), k = state.range(1), n = state.range(2);
  openblas_set_num_threads(static_cast<int>(state.range(3)));
  std::vector<float> a(static_cast<std::size_t>(m * k), 0.5f), b(static_cast<std::size_t>(k * n), 0.25f),
      c(static_cast<std::size_t>(m * n));
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k),
                1.f, a.data(), static_cast<int>(k), b.data(), static_cast<int>(n), 0.f, c.data(), static_cast<int>(n));
    benchmark::DoNotOptimize(c.data());
  }
  openblas_set_num_threads(1);  // Kiln keeps OpenBLAS single-threaded (Note [Own the threading])
  set_flops(state, m, n, k);
}

void matmul_sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"m", "k", "n", "threads"});
  for (int threads : {1, 2}) {
    b->Args({64, 256, 1024, threads});
    b->Args({512, 512, 512, threads});
    b->Args({1024, 1024, 1024, threads});
  }
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}
BENCHMARK(BM_MatmulKiln)->Apply(matmul_sizes);
BENCHMARK(BM_MatmulSgemm)->Apply(matmul_sizes);

// ---- Elementwise tanh / sigmoid on 1M floats ----------------------------------------------------
constexpr std::int64_t kElems = 1 << 20;

void set_bandwidth(benchmark::State& state) {
  state.counters["GB"] = benchmark::Counter(2.0 * 4 * kElems * static_cast<double>(state.iterations()) / 1e9,
                                              benchmark::Counter::kIsRate);
}

// Both sides read the same values: xsimd's tanh takes data-dependent shortcuts.
const kiln::Tensor& elementwise_input() {
  static const kiln::Tensor x = [] {
    kiln::Generator g(0);
    return kiln::uniform({kElems}, -4, 4, kiln::kFloat32, &g);
  }();
  return x;
}

template <bool kSigmoid>
void BM_ElementwiseKiln(benchmark::State& state) {
  const Variable x(elementwise_input());
  for (auto _ : state) benchmark::DoNotOptimize(kSigmoid ? kiln::sigmoid(x) : kiln::tanh(x));
  set_bandwidth(state);
}

template <bool kSigmoid>
void BM_ElementwiseXsimdLoop(benchmark::State& state) {
  using batch = xsimd::batch<float>;
  const float* src = elementwise_input().data<float>();
  std::vector<float, xsimd::aligned_allocator<float>> in(src, src + kElems), out(kElems);
  for (auto _ : state) {
    for (std::size_t i = 0; i < in.size(); i += batch::size) {
      const batch v = batch::load_aligned(&in[i]);
      const batch r = kSigmoid ? batch(1.f) / (batch(1.f) + xsimd::exp(-v)) : xsimd::tanh(v);
      r.store_aligned(&out[i]);
    }
    benchmark::DoNotOptimize(out.data());
  }
  set_bandwidth(state);
}
BENCHMARK(BM_ElementwiseKiln<false>)->Name("BM_TanhKiln")->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ElementwiseXsimdLoop<false>)->Name("BM_TanhXsimdLoop")->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ElementwiseKiln<true>)->Name("BM_SigmoidKiln")->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ElementwiseXsimdLoop<true>)->Name("BM_SigmoidXsimdLoop")->Unit(benchmark::kMicrosecond);

// Collects the counters so the summary can put both sides of each ratio together.
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  std::map<std::string, std::map<std::string, double>> counters;
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs)
      for (const auto& [name, c] : r.counters) counters[r.benchmark_name()][name] = c.value;
    ConsoleReporter::ReportRuns(runs);
  }
};

void print_summary(const SummaryReporter& rep) {
  auto get = [&rep](const std::string& run, const std::string& counter) {
    auto it = rep.counters.find(run);
    if (it == rep.counters.end()) return std::nan("");
    auto jt = it->second.find(counter);
    return jt == it->second.end() ? std::nan("") : jt->second;
  };
  fmt::print("\nSummary (this process, OpenBLAS core {})\n", openblas_get_corename());
  const double per_op = get("BM_TapeChain", "per_op"), fwd = get("BM_TapeChainForwardOnly", "per_op");
  if (!std::isnan(per_op))
    fmt::print("  tape overhead: {:.3f} us per op forward+backward ({:.3f} us forward only); target <= 1 us\n",
               per_op * 1e6, fwd * 1e6);
  for (int threads : {1, 2})
    for (const char* size : {"64/k:256/n:1024", "512/k:512/n:512", "1024/k:1024/n:1024"}) {
      const std::string args = fmt::format("/m:{}/threads:{}/real_time", size, threads);
      const double kiln = get("BM_MatmulKiln" + args, "GFLOP"), raw = get("BM_MatmulSgemm" + args, "GFLOP");
      if (!std::isnan(kiln) && !std::isnan(raw))
        fmt::print("  matmul m:{} {} thread(s): Kiln {:.1f} GFLOP/s, sgemm {:.1f} GFLOP/s, Kiln/sgemm {:.1f}% "
                   "(target >= 95%)\n", size, threads, kiln, raw, 100 * kiln / raw);
    }
  for (const char* fn : {"Tanh", "Sigmoid"}) {
    const double kiln = get(fmt::format("BM_{}Kiln", fn), "GB"), loop = get(fmt::format("BM_{}XsimdLoop", fn), "GB");
    if (!std::isnan(kiln) && !std::isnan(loop))
      fmt::print("  {} on 1M floats: Kiln {:.1f} GB/s, plain xsimd loop {:.1f} GB/s, Kiln/loop {:.0f}%\n", fn, kiln, loop,
                 100 * kiln / loop);
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("openblas_core", openblas_get_corename());
  benchmark::AddCustomContext("xsimd_arch", xsimd::default_arch::name());
  SummaryReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  print_summary(reporter);
  benchmark::Shutdown();
  return 0;
}

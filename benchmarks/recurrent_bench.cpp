// Generic graph against the fused kernel for LSTM layers, forward + backward, in one process.
// Configurations from issue 4: (a) batch 64, seq 100, input 128, hidden 256; (b) batch 32, seq 50,
// input 32, hidden 64; (d) 2-layer bidirectional, batch 32, seq 64, input 128, hidden 256.
//
//   build/benchmarks/kiln_bench_recurrent [--benchmark_filter=b/]

#include <cblas.h>

#include <benchmark/benchmark.h>

#include "autograd/tape.hpp"
#include "layers/recurrent.hpp"
#include "ops/ops.hpp"
#include "tensor/parallel.hpp"

namespace {

using kiln::Variable;
namespace nn = kiln::nn;

struct Config {
  const char* name;
  std::int64_t batch, seq, input, hidden, layers;
  bool bidirectional;
};
const Config kConfigs[] = {{"a", 64, 100, 128, 256, 1, false}, {"b", 32, 50, 32, 64, 1, false},
                           {"d", 32, 64, 128, 256, 2, true}};

void BM_LSTM(benchmark::State& state) {
  const Config& c = kConfigs[state.range(0)];
  const bool fused = state.range(1) == 1;
  kiln::set_num_threads(static_cast<int>(state.range(2)));
  kiln::manual_seed(0);
  nn::LSTM lstm(nn::LSTMOptions(c.input, c.hidden).num_layers(c.layers).bidirectional(c.bidirectional)
                    .impl(fused ? nn::Impl::Fused : nn::Impl::Generic));
  const Variable x(kiln::randn({c.seq, c.batch, c.input}), true);
  for (auto _ : state) {
    Variable out = lstm.forward(x, {}).output;
    kiln::sum(out).backward();
    lstm.zero_grad();
  }
  state.SetLabel(std::string(c.name) + (fused ? " fused" : " generic"));
}
BENCHMARK(BM_LSTM)
    ->ArgNames({"config", "fused", "threads"})
    ->ArgsProduct({{0, 1, 2}, {0, 1}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("openblas_core", openblas_get_corename());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

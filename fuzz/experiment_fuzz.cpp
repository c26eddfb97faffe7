// Fuzz target: the experiment file loader behind `kiln train` and `kiln summary` (experiment/). Any bytes
// are refused with a kiln::Error (every problem with its file:line:column) or read into an experiment
// whose document reads back the same; a readable experiment's task and model are then built and run
// on one batch, or refused with a kiln::Error (sizes beyond the fuzzer's memory bound included).

#include <cstdint>
#include <string>

#include "experiment/build_model.hpp"
#include "experiment/experiment.hpp"
#include "experiment/tasks.hpp"
#include "fuzz/fuzz_target.hpp"
#include "tensor/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kiln::fuzz::bound_kiln();
  using namespace kiln::experiment;
  Experiment e;
  try {
    e = parse_experiment(std::string(reinterpret_cast<const char*>(data), size), "fuzz.yaml");
  } catch (const kiln::Error&) {
    return 0;
  }
  try {
    const Experiment again = parse_experiment(e.resolved_yaml, "config.yaml");
    KILN_FUZZ_EXPECT(again.resolved_yaml == e.resolved_yaml, "the resolved document does not read back the same");
  } catch (const kiln::Error& err) {
    KILN_FUZZ_EXPECT(false, err.what());
  }
  // Building and running what a file asks for, within bounds a fuzzer can afford.
  const bool reads_files = e.data.task == "char_lm" || e.data.task == "word_lm" || e.data.task.rfind("csv_", 0) == 0;
  if (e.data.batch * e.data.length > 4096 || reads_files) return 0;
  try {
    const auto task = make_task(e.data, e.dtype, e.seed);
    const auto model = build_model(e, *task);
    model->forward(task->eval_batch(0));
  } catch (const kiln::Error&) {
  }
  return 0;
}

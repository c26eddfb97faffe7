// kiln summary CONFIG [--set KEY=VALUE ...]: the model of an experiment file as a Keras-style table,
// run once on a batch of its data.

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "experiment/build_model.hpp"
#include "experiment/experiment.hpp"
#include "experiment/tasks.hpp"
#include "layers/summary.hpp"

namespace kiln::cli {

void add_summary_command(CLI::App& app) {
  auto config = std::make_shared<std::string>();
  auto set = std::make_shared<std::vector<std::string>>();
  CLI::App* cmd = app.add_subcommand("summary", "Print the model of an experiment file as a table (layers, output shapes, "
                                                "parameters)");
  cmd->add_option("config", *config, "The experiment file (.yaml)")->required();
  cmd->add_option("--set", *set, "Override a key of the file: --set data.batch=32 (repeatable)");
  cmd->callback([config, set] {
    const experiment::Experiment e = experiment::read_experiment(*config, *set);
    const auto task = experiment::make_task(e.data, e.dtype, e.seed);
    const auto model = experiment::build_model(e, *task);
    model->module().to(e.dtype);
    fmt::print("{}", model->summary(task->eval_batch(0)));
  });
}

}  // namespace kiln::cli

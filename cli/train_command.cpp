// kiln train CONFIG [--set KEY=VALUE ...] | kiln train --resume RUN_DIR: trains an experiment file
// (experiment/experiment.hpp) into its run folder, or continues a run from its last checkpoint.

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "dist/dist.hpp"
#include "experiment/trainer.hpp"
#include "plugins/registry.hpp"
#include "tensor/error.hpp"

namespace kiln::cli {
namespace {

struct TrainArgs {
  std::string config, resume;
  std::vector<std::string> set, loads;
  bool quiet = false;
};

void run(const TrainArgs& a) {
  KILN_CHECK(a.config.empty() != a.resume.empty(), "train: give an experiment file, or --resume RUN_DIR (not both)");
  KILN_CHECK(a.resume.empty() || a.set.empty(), "train: --set changes an experiment; a resumed run keeps its own config.yaml");
  for (const auto& path : a.loads) plugins::load_plugin(path);  // before the file names a plugin's cell
  experiment::TrainOptions options;
  options.quiet = a.quiet;
  const bool main = dist::rank() == 0;  // under mpirun, rank 0 speaks for the job
  experiment::TrainResult r;
  if (a.resume.empty()) {
    const experiment::Experiment e = experiment::read_experiment(a.config, a.set);
    if (main)
      fmt::print("kiln train {}: {} of {} on {} thread(s){}\n", a.config,
                 e.train.epochs > 0 ? fmt::format("{} epochs", e.train.epochs) : fmt::format("{} steps", e.train.steps), e.data.task,
                 e.threads, dist::distributed() ? fmt::format(" x {} ranks", dist::world_size()) : "");
    r = experiment::train(e, options);
  } else {
    if (main) fmt::print("kiln train --resume {}\n", a.resume);
    r = experiment::resume(a.resume, options);
    if (main) fmt::print("resumed from step {}\n", r.resumed_from);
  }
  if (main)
    fmt::print("done: {} steps; train loss {:.4g}; eval loss {:.4g}, {} {:.4g}\nrun folder: {} (config.yaml, metrics.csv, "
             "metrics.jsonl, checkpoints/, model.safetensors)\n", r.steps, r.train_loss, r.eval_loss, r.metric, r.eval_metric,
             r.run_dir);
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("train", "Train an experiment file (YAML) into its run folder, or --resume a run");
  cmd->add_option("config", a->config, "The experiment file (.yaml)");
  cmd->add_option("--resume", a->resume, "Continue the run in this folder from its newest checkpoint");
  cmd->add_option("--set", a->set, "Override a key of the file: --set train.steps=100 (repeatable)");
  cmd->add_option("--load", a->loads, "Plugin libraries to load first (their cells and kernels; KILN_PLUGINS does the same; "
                                      "a resumed run needs them again)")->check(CLI::ExistingFile);
  cmd->add_flag("--quiet", a->quiet, "No progress output");
  cmd->callback([a] { run(*a); });
}

}  // namespace kiln::cli

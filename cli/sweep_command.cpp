// kiln sweep GRID.yaml [--set KEY=VALUE] [--parallel N] [--load LIB]: runs a grid of experiments
// (experiment/sweep.hpp; under mpirun spread over the ranks) and writes its table and report; kiln report DIR writes a run's or a sweep's
// report again from its files.

#include <filesystem>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "dist/dist.hpp"
#include "experiment/run_report.hpp"
#include "experiment/sweep.hpp"
#include "plugins/registry.hpp"
#include "tensor/error.hpp"

namespace kiln::cli {
namespace {

struct SweepArgs {
  std::string file;
  std::vector<std::string> set, loads;
  int parallel = 0;
  bool quiet = false, table_only = false;
};

void run(const SweepArgs& a) {
  for (const auto& path : a.loads) plugins::load_plugin(path);
  experiment::SweepPlan plan = experiment::read_sweep(a.file, a.set);
  if (a.table_only && dist::rank() != 0) return;
  if (a.parallel > 0) plan.parallel = a.parallel;
  std::vector<experiment::RunOutcome> outcomes;
  if (a.table_only) {
    for (const auto& r : plan.runs) outcomes.push_back(experiment::read_outcome(r));
  } else {
    // Each run is this program started again; a library's cells are loaded there by KILN_PLUGINS.
    if (!a.loads.empty()) {
      std::string list = std::getenv("KILN_PLUGINS") != nullptr ? std::getenv("KILN_PLUGINS") : "";
      for (const auto& path : a.loads) list += (list.empty() ? "" : ":") + std::filesystem::absolute(path).string();
      setenv("KILN_PLUGINS", list.c_str(), 1);
    }
    outcomes = experiment::run_sweep(plan, std::filesystem::read_symlink("/proc/self/exe").string(), a.quiet);
    if (dist::rank() != 0) return;  // Note [Distributed sweeps]: rank 0 has every outcome and writes the table
  }
  const std::string table = experiment::write_sweep_results(plan, outcomes);
  fmt::print("\n{}report: {}/report.html (table: summary.txt, sweep.csv)\n", table, plan.output);
  std::size_t failed = 0;
  for (const auto& o : outcomes) failed += o.state == experiment::RunOutcome::State::Failed;
  KILN_CHECK(failed == 0 || a.table_only, "sweep: {} of {} runs failed (see the table)", failed, outcomes.size());
}

}  // namespace

void add_sweep_command(CLI::App& app) {
  auto a = std::make_shared<SweepArgs>();
  CLI::App* cmd = app.add_subcommand("sweep", "Run a grid of experiments (cells x tasks x seeds x any key) as separate processes and "
                                              "compare the variants: table, CSV and HTML report");
  cmd->add_option("grid", a->file, "The sweep file (.yaml)")->required();
  cmd->add_option("--set", a->set, "Override a key of the sweep file: --set parallel=2 (repeatable)");
  cmd->add_option("--parallel", a->parallel, "Runs at once (overrides the file's parallel)")->check(CLI::Range(1, 256));
  cmd->add_option("--load", a->loads, "Plugin libraries whose cells the runs use (passed on to every run)")->check(CLI::ExistingFile);
  cmd->add_flag("--table", a->table_only, "Run nothing: the table and report of the runs finished so far");
  cmd->add_flag("--quiet", a->quiet, "No line per run");
  cmd->callback([a] { run(*a); });

  auto dir = std::make_shared<std::string>();
  CLI::App* report = app.add_subcommand("report", "Write a run folder's report.html again from its files");
  report->add_option("run", *dir, "The run folder")->required()->check(CLI::ExistingDirectory);
  report->callback([dir] { fmt::print("{}\n", experiment::write_run_report(*dir)); });
}

}  // namespace kiln::cli

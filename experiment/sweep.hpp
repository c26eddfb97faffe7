#pragma once
// Sweeps (`kiln sweep GRID.yaml`): a grid of runs, experiments x every combination of the grid's values,
// each run a `kiln train` process of its own, as many at once as asked; then one table and one report
// comparing the variants.
//
//   output: runs/sweeps/greff       # the sweep folder: a run folder per run, sweep.csv, report.html
//   parallel: 2                     # runs at once (each on its experiment's threads)
//   experiments:                    # name -> experiment file (relative to this file)
//     adding: ../greff/adding.yaml
//   grid:                           # key -> values (any key --set takes); the runs are their product
//     model[0].recurrent.cell: [peephole_lstm, lstm_nig, lstm_nfg]
//     seed: [1, 2, 3]
//   set: {train.steps: 600}         # applied to every run
//   replicate: seed                 # the key whose values repeat a variant (default seed)
//   baseline: peephole_lstm         # the value variants are compared with (default: the first grid key's first)
//   alpha: 0.05                     # significance level of the comparison
//
// Note [Sweep runs]: a run is finished when its folder holds result.json (Note [Run results]); running
// a sweep again skips finished runs, resumes a run that has checkpoints but no result (a sweep that was
// stopped), and refuses a run folder whose config.yaml is not the one the grid now makes (the grid was
// edited: delete that folder or choose another output). A run that fails is reported in the table with
// the last error line of its log (RUN/train.log) and does not stop the others.
//
// Note [Beyond noise]: per experiment, the runs of a variant are its replicates (seeds). A variant is
// compared with its reference: the variant with the same values but the baseline's for the key the
// baseline is a value of (with a grid of cells x learning rates, lstm_nig at lr 0.01 against the vanilla
// LSTM at lr 0.01). Its final evaluation metric is compared with the reference's by Welch's t-test (unequal variances); it
// differs beyond seed noise when p < alpha, better or worse by the metric's direction (lower mse, bits
// per character, perplexity and loss; higher accuracy and exact match). Fewer than two replicates on
// either side: no test.

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::experiment {

struct SweepRun {
  std::string experiment;             ///< the experiments key
  std::string file;                   ///< its experiment file
  std::vector<std::pair<std::string, std::string>> values;  ///< grid key -> value, in the grid's order
  std::string variant;                ///< the values of every key but the replicate one: "cell=lstm_nig"
  std::string replicate;              ///< the replicate key's value ("" without one)
  std::string reference;              ///< the variant it is compared with: its own values, the baseline key's set to the baseline
  std::string dir;                    ///< its run folder
  std::vector<std::string> overrides; ///< every --set it runs with (set:, then the grid's, then output)
};

struct SweepPlan {
  std::string file, output;
  int parallel = 1;
  std::vector<std::pair<std::string, std::string>> experiments;  ///< name -> file
  std::vector<std::pair<std::string, std::vector<std::string>>> grid;
  std::vector<std::pair<std::string, std::string>> set;
  std::string replicate = "seed";
  std::string baseline_key, baseline;  ///< variants are compared with the one whose baseline_key is baseline, other keys equal
  double alpha = 0.05;
  std::vector<SweepRun> runs;  ///< experiments x the grid's product, in order
};

/// Reads and checks a sweep file (every problem with its file:line:column, one error); `overrides`
/// (KEY=VALUE) change the sweep file's own keys, as `kiln train --set` does an experiment's.
SweepPlan read_sweep(const std::string& path, const std::vector<std::string>& overrides = {});

struct RunOutcome {
  enum class State { Finished, Skipped, Failed } state = State::Failed;
  std::string error;      ///< why it failed
  double eval_loss = 0, eval_metric = 0, ms_per_step = 0;
  std::string metric, path;  ///< the task's metric; the recurrent layers' paths ("generic", "fused: lstm (builtin)")
  std::int64_t steps = 0;
};

/// Runs what is not finished, `plan.parallel` processes at once (`kiln` is the program to start: the
/// running one, /proc/self/exe), printing a line as each starts and ends unless quiet; returns every
/// run's outcome, in plan order.
std::vector<RunOutcome> run_sweep(const SweepPlan& plan, const std::string& kiln, bool quiet);

/// The outcome of a finished run folder (result.json), or Failed with the reason.
RunOutcome read_outcome(const SweepRun& run);

/// The comparison table (Note [Beyond noise]) as text; writes sweep.csv (a row per run), summary.txt (the
/// table) and report.html into plan.output. Returns the table.
std::string write_sweep_results(const SweepPlan& plan, const std::vector<RunOutcome>& outcomes);

}  // namespace kiln::experiment

#pragma once
// What trainer.cpp and generate.cpp share inside the experiment tool: a run (task, model, optimiser,
// schedule, data generator), the task's loss on a batch, and making or opening a run. Not installed.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "dist/data_parallel.hpp"
#include "experiment/build_model.hpp"
#include "experiment/experiment.hpp"
#include "experiment/tasks.hpp"
#include "optim/optimizer.hpp"
#include "optim/scheduler.hpp"

namespace kiln::experiment {

struct Outcome {
  Variable loss;
  double metric = 0;
};

/// The task's loss on a batch, and its metric (mse, accuracy, bits per character or perplexity; a
/// seq2seq task's exact match is measured by decoding, in evaluation).
Outcome score(const Task& task, const Variable& out, const Tensor& y);

/// Everything a run is: its task, model, optimiser, schedule and data generator.
struct Run {
  Experiment e;
  std::unique_ptr<Task> task;
  std::unique_ptr<Model> model;
  std::unique_ptr<optim::Optimizer> optimizer;
  std::unique_ptr<optim::LRScheduler> schedule;
  Generator data;
  std::unique_ptr<dist::DataParallel> ddp;  ///< under mpirun (Note [Data-parallel steps])
};

/// A new run of `e`: seeded, model built, optimiser and schedule made.
std::unique_ptr<Run> make_run(const Experiment& e);
/// The run of a run folder (its config.yaml); `command` names the caller in errors.
std::unique_ptr<Run> open_run(const std::string& dir, const char* command);
/// Loads a run's final weights, else its newest readable checkpoint; returns the file and its step.
std::pair<std::string, std::int64_t> load_weights(Run& run, const std::string& dir, const char* command);

}  // namespace kiln::experiment

#pragma once
// Training an experiment (`kiln train`): the loop, evaluation, metrics and checkpoints of a run folder.
//
// A run folder holds config.yaml (the experiment with --set applied), metrics.csv and metrics.jsonl (a
// row per logged step and per evaluation), checkpoints/step_NNNNNNNNN.safetensors (the last K) and, at
// the end, model.safetensors (the weights, under the model's parameter names).
//
// Note [Exact resume]: a checkpoint holds everything the next step depends on: the model's weights, the
// optimiser's state (moments, momentum buffers, step count, learning rate), the schedule's, the data
// generator's and the default generator's (dropout, teacher forcing) state, the data position (the rows
// of a file's shuffled pass already given) and the step. Written atomically; the run
// resumed from it (`kiln train --resume RUN`) makes the same draws, the same updates and so ends with
// the same bits as a run never interrupted. Metrics rows past the checkpoint are dropped on resume (they
// are computed again). A checkpoint that cannot be read, or that another configuration wrote, is
// refused with what does not match; an older one is used then, with a warning.

#include <cstdint>
#include <string>
#include <vector>

#include "experiment/experiment.hpp"

namespace kiln::experiment {

struct TrainOptions {
  /// A progress bar on a terminal; plain lines otherwise; none when quiet.
  bool quiet = false;
};

struct TrainResult {
  std::string run_dir;
  std::int64_t steps = 0, resumed_from = 0;
  double train_loss = 0, eval_loss = 0, eval_metric = 0;
  std::string metric;
};

/// Trains `e` into a new run folder (e.output; an error if it already holds a run).
TrainResult train(const Experiment& e, const TrainOptions& options = {});
/// Continues the run in `run_dir` from its newest readable checkpoint.
TrainResult resume(const std::string& run_dir, const TrainOptions& options = {});

/// The graph of one training step of `e` (everything its loss is computed from) as Graphviz DOT, each
/// time step of a recurrent layer on the generic graph in a box of its own (Note [Tape scopes]); a fused
/// layer is one op (`kiln graph`).
std::string training_step_dot(const Experiment& e);

struct EvalResult {
  std::string weights;  ///< the file evaluated: model.safetensors, or the newest checkpoint
  std::int64_t step = 0;
  double loss = 0, metric = 0;
  std::string metric_name;
};

/// Evaluates a run's model (its final weights, else its newest checkpoint) on the task's evaluation
/// batches (`kiln eval RUN`).
EvalResult evaluate_run(const std::string& run_dir);

struct GenerateOptions {
  // A language model's sampling.
  std::string prime = "\n";
  std::int64_t length = 200;
  double temperature = 0.8;
  std::uint64_t seed = 0;
  // A seq2seq model's search.
  std::vector<std::string> inputs;  ///< the sources to translate (none: the first evaluation examples)
  std::int64_t beam = 1;            ///< 1: greedy search
  double length_penalty = 1.0;
};

/// Generates from a run (`kiln generate RUN`). A language model's run (char_lm, word_lm): text sampled
/// after `prime`, each next token drawn from the model's distribution at the last step (scaled by
/// 1/temperature), given the last data.length tokens; the prime and the text, repeatable with `seed`.
/// A seq2seq run: a line "source -> output" per input, decoded by greedy or beam search
/// (nn::beam_search, Note [Beam search]).
std::string generate_text(const std::string& run_dir, const GenerateOptions& options = {});

}  // namespace kiln::experiment

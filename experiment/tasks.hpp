#pragma once
// The data an experiment trains on: generated tasks and text. Each task draws training batches from
// the run's data generator (whose state a checkpoint keeps) and has a fixed set of evaluation batches.
//
//   adding     x [B, T, 2] (value, marker), y [B, 1]: the sum of the two marked values (MSE; answering
//              1 always scores 1/6)
//   copy       x [B, T] ids: copy_length symbols, a delay of blanks, a marker; y [B, T]: blanks, then
//              the symbols again (copying memory, Arjovsky et al. 2016; cross-entropy per step)
//   sentiment  x [B, T] ids: an opinion word, filler, maybe "not really" flipping it; y [B, 1] 0/1
//   char_lm    x [B, T] byte ids of a text, y [B, T] the next ones (bits per character); the text's
//              last tenth is kept for evaluation

#include <memory>
#include <string>

#include "experiment/experiment.hpp"
#include "tensor/random.hpp"

namespace kiln::experiment {

struct Batch {
  Tensor x, y;
};

enum class Loss { MeanSquared, Binary, PerStepClasses };

class Task {
 public:
  virtual ~Task() = default;
  /// Features per step of x, or 0 when x holds token ids.
  virtual std::int64_t input_features() const = 0;
  /// The token ids x may hold (0 for features).
  virtual std::int64_t vocabulary() const { return 0; }
  /// What the model's last layer must give per example (or per step).
  virtual std::int64_t outputs() const = 0;
  virtual Loss loss() const = 0;
  /// The sequence length of x.
  virtual std::int64_t steps() const = 0;
  virtual Batch train_batch(Generator& gen) const = 0;
  /// Evaluation batch i: the same every time it is asked for.
  virtual Batch eval_batch(std::int64_t i) const = 0;
  /// The name of the evaluation metric: "mse", "accuracy", "bits_per_char".
  virtual std::string metric() const = 0;
  bool per_step() const { return loss() == Loss::PerStepClasses; }
  /// Text of token ids, for generating from a character model ("" where it means nothing).
  virtual std::string decode(const std::vector<std::int64_t>& ids) const;
  virtual std::vector<std::int64_t> encode(const std::string& text) const;
};

/// The task of `data`; the `dtype` of float inputs and targets. A text that cannot be read is an error
/// naming it.
std::unique_ptr<Task> make_task(const DataSpec& data, DType dtype, std::uint64_t seed);

}  // namespace kiln::experiment

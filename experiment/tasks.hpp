#pragma once
// The data an experiment trains on: generated tasks, text and CSV files. Each task draws training
// batches from the run's data generator (whose state a checkpoint keeps) and has a fixed set of
// evaluation batches.
//
//   adding            x [B, T, 2] (value, marker), y [B, 1]: the sum of the two marked values (MSE;
//                     answering 1 always scores 1/6)
//   copy              x [B, T] ids: copy_length symbols, a delay of blanks, a marker; y [B, T]: blanks,
//                     then the symbols again (copying memory, Arjovsky et al. 2016; cross-entropy per step)
//   sentiment         x [B, T] ids: an opinion word, filler, maybe "not really" flipping it; y [B, 1] 0/1
//   tagging           x [B, T] word ids with lengths, y [B, T] a tag per word (O, PER, LOC, ORG); some
//                     names are a person or a place by the word after them
//   digits            x [B, S] digit strings of min_length to max_length, y the same (or reversed):
//                     seq2seq, the context-vector bottleneck (exact match of greedy decoding)
//   date_translation  x [B, S] characters of a date in one of 12 human formats, y its ISO form
//                     (seq2seq: tgt_in is BOS + y; exact match of greedy decoding on held-out dates)
//   char_lm, word_lm  x [B, T] ids of a text's characters or words, y [B, T] the next ones (bits per
//                     character, perplexity); the text's last tenth is kept for evaluation
//   csv_classification  a CSV file, a row per sequence: a label column and the values of its steps
//   csv_forecast      a CSV file, a row per time step: windows of `length` rows predict the target
//                     columns `horizon` rows ahead (standardised with the training rows' mean and std)
//
// Labels of -100 (padding) count in neither loss nor metric.

#include <memory>
#include <string>

#include "experiment/experiment.hpp"
#include "tensor/random.hpp"

namespace kiln::experiment {

struct Batch {
  Tensor x, y;
  Tensor lengths;  ///< int64 [B]: the steps of each sequence of x (undefined: all of them)
  Tensor tgt_in;   ///< seq2seq tasks: int64 [B, T], BOS then y shifted right
};

enum class Loss { MeanSquared, Binary, Classes, PerStepClasses };

/// Token ids every seq2seq task uses.
constexpr std::int64_t kPadId = 0, kBosId = 1, kEosId = 2, kIgnoreLabel = -100;

class Task {
 public:
  virtual ~Task() = default;
  /// Features per step of x, or 0 when x holds token ids.
  virtual std::int64_t input_features() const = 0;
  /// The token ids x may hold (0 for features).
  virtual std::int64_t vocabulary() const { return 0; }
  /// What the model's last layer must give per example (or per step); a seq2seq task's target
  /// vocabulary.
  virtual std::int64_t outputs() const = 0;
  virtual Loss loss() const = 0;
  /// The sequence length of x (the longest, with lengths).
  virtual std::int64_t steps() const = 0;
  /// The next training batch: drawn from gen, or (a file's rows) the next rows of a shuffled pass.
  virtual Batch train_batch(Generator& gen) = 0;
  /// Examples in one pass over the training data (an epoch), or 0 for data generated without end.
  virtual std::int64_t train_examples() const { return 0; }
  /// Where the training data stands (the rows of this pass already given), for a checkpoint; "" when
  /// batches depend on the generator alone. set_position restores it, or throws naming what is wrong.
  virtual std::string position() const { return ""; }
  virtual void set_position(const std::string& position);
  /// Evaluation batch i: the same every time it is asked for.
  virtual Batch eval_batch(std::int64_t i) const = 0;
  /// How many evaluation batches there are (those of a file's evaluation rows), or 0 for data.eval_batches.
  virtual std::int64_t eval_batch_count() const { return 0; }
  /// The name of the evaluation metric: "mse", "accuracy", "bits_per_char", "perplexity", "exact_match".
  virtual std::string metric() const = 0;
  bool per_step() const { return loss() == Loss::PerStepClasses; }
  /// Whether x -> y is sequence to sequence (an encoder-decoder model; y and tgt_in may differ in length
  /// from x).
  virtual bool seq2seq() const { return false; }
  /// Text of output ids (the next tokens of a language model, a seq2seq task's target tokens); "" where
  /// that means nothing.
  virtual std::string decode(const std::vector<std::int64_t>& ids) const;
  /// Input ids of a text (a language model's, a seq2seq task's source).
  virtual std::vector<std::int64_t> encode(const std::string& text) const;
  /// Text of input ids, for showing a seq2seq task's sources.
  virtual std::string decode_input(const std::vector<std::int64_t>& ids) const;
  /// Whether tokens are words, written with spaces between them.
  virtual bool words() const { return false; }
  /// The id that stands for a token the vocabulary lacks (never sampled), or -1.
  virtual std::int64_t unknown_id() const { return -1; }
  /// Whether decode/encode mean something: generate may run on this task.
  virtual bool has_text() const { return false; }
  /// Tokens a decoder may emit for one source before it stops (seq2seq).
  virtual std::int64_t max_target_length() const { return 0; }
};

/// The task of `data`; the `dtype` of float inputs and targets. A file that cannot be read or used is
/// an error naming it and the key.
std::unique_ptr<Task> make_task(const DataSpec& data, DType dtype, std::uint64_t seed);

}  // namespace kiln::experiment

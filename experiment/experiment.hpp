#pragma once
// An experiment as a file: what `kiln train CONFIG` runs. read_experiment checks the whole file before
// anything runs and reports every problem with its file:line:column (experiment/config_reader.hpp).
//
//   seed: 0                       # the same seed gives bit-identical runs
//   threads: 1
//   dtype: float32                # or float64
//   output: runs/adding_lstm      # the run folder (default runs/<file name>/run_<N>, a new one each time)
//   data:    {task: adding, length: 50, batch: 32}
//   model:
//     - recurrent: {cell: lstm, hidden: 64}
//     - linear: {out: auto}
//   train:   {steps: 2000, optimizer: {name: adam, lr: 0.002}, clip_grad_norm: 1.0, eval_every: 200}
//   instruments: {every: 100, gradient_flow: true, spectra: true, saturation: true}   # optional

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "experiment/config_reader.hpp"
#include "tensor/dtype.hpp"

namespace kiln::experiment {

struct DataSpec {
  std::string task;            ///< one of task_names()
  std::int64_t batch = 32;
  std::int64_t length = 50;    ///< steps per sequence (adding, sentiment, tagging, char/word_lm, csv_forecast); the delay (copy)
  std::int64_t symbols = 8;    ///< copy: alphabet size
  std::int64_t copy_length = 10;  ///< copy: the sequence to remember
  std::int64_t min_length = 1; ///< digits: the shortest string (length: the longest)
  bool reverse = false;        ///< digits: the target is the source reversed
  std::vector<std::string> text;  ///< char_lm, word_lm: the text files, read one after another (default: the fortunes Debian ships)
  std::int64_t vocab = 10000;  ///< word_lm: the most frequent words kept, the others read as <unk>
  std::string file;            ///< csv_*: the CSV file (a header row naming the columns)
  std::string label = "label"; ///< csv_classification: the label column
  std::int64_t features = 1;   ///< csv_classification: values per step (columns after the label, step-major)
  std::vector<std::string> columns, targets;  ///< csv_forecast: inputs (empty: all), targets (empty: the inputs)
  std::int64_t horizon = 1;    ///< csv_forecast: how many rows ahead the targets are
  double eval_fraction = 0.1;  ///< csv_*: the share of rows kept for evaluation (the last rows for forecasting)
  std::int64_t eval_batches = 4;
};

/// One layer of the model list, or the whole model (kind seq2seq or transformer): its kind and options
/// (numbers and words as given, "auto" resolved from the data when the model is built).
struct LayerSpec {
  std::string kind;            ///< one of layer_kinds(), or seq2seq, transformer
  std::string path;            ///< "model[1].recurrent", for messages
  std::string cell = "lstm", impl = "auto", activation = "tanh";
  std::int64_t size = 0;       ///< embedding dim, recurrent hidden, linear out, seq2seq hidden, d_model (0: auto)
  std::int64_t vocab = 0;      ///< embedding rows (0: the task's vocabulary)
  std::int64_t layers = 1;     ///< recurrent, transformer_encoder and seq2seq layers; a transformer's encoder layers
  std::int64_t decoder_layers = 1;  ///< transformer
  bool bidirectional = false, single_bias = false;
  int return_sequences = -1;   ///< -1: as the task needs
  std::optional<double> forget_bias;  ///< recurrent: the forget gate's initial bias (RecurrentOptions::forget_bias)
  double dropout = 0;
  std::int64_t heads = 4, feedforward = 0;  ///< attention heads; feed-forward width (0: 4 d_model)
  bool norm_first = false, learned = false;  ///< pre-norm Transformer layers; a learned position table
  std::int64_t max_len = 512;  ///< positions a positional encoding covers
  std::string mode = "mean";   ///< pool: last, mean, max
  std::int64_t embedding = 0;  ///< seq2seq: token embedding size (0: the hidden size)
  std::string attention = "none", score = "general";  ///< seq2seq: none, bahdanau, luong; luong's score
  bool input_feeding = true, reverse_source = false;
  double teacher_forcing = 1.0;  ///< seq2seq: the chance a training step reads the true previous token
};

struct OptimizerSpec {
  std::string name = "adam";   ///< sgd, adam, adamw, rmsprop
  double lr = 1e-3, momentum = 0, weight_decay = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
};

struct ScheduleSpec {
  std::string name = "none";   ///< none, step, exponential, cosine, warmup
  std::int64_t step_size = 1000, warmup_steps = 0;
  double gamma = 0.5, eta_min = 0;
};

struct TrainSpec {
  std::int64_t steps = 1000;   ///< with epochs: resolved from the task when the run is made
  std::int64_t epochs = 0;     ///< passes over a file's training data (0: steps counts)
  OptimizerSpec optimizer;
  ScheduleSpec schedule;
  double clip_grad_norm = 0;   ///< 0: no clipping
  std::int64_t eval_every = 100, log_every = 10;   ///< eval_every 0: once an epoch
  std::int64_t checkpoint_every = 500, keep_checkpoints = 3;  ///< checkpoint_every 0: once an epoch
};

/// What a run records about its recurrent layers (experiment/instruments.hpp): every `every` steps (0: never;
/// default: 20 times a run), on the first evaluation batch, into instruments.jsonl and the report.
struct InstrumentSpec {
  std::int64_t every = -1;        ///< -1: steps / 20
  bool gradient_flow = true;      ///< ||dL/dh_t|| for every step t
  bool spectra = true;            ///< singular values and spectral radius of each recurrent weight block and step Jacobian
  bool saturation = true;         ///< the share of sigmoid outputs below 0.1 or above 0.9, tanh outputs beyond +-0.9
  std::int64_t jacobian_steps = 4;  ///< steps at which the step Jacobian is taken (spread over the sequence)
};

struct Experiment {
  std::string file;            ///< where it was read from
  std::string resolved_yaml;   ///< the document with --set applied (the run folder's config.yaml)
  std::uint64_t seed = 0;
  int threads = 1;
  DType dtype = kFloat32;
  std::string output;          ///< the run folder; absent from the file: runs/<file name>/run_<N>, N the next free
  bool output_given = false;
  DataSpec data;
  std::vector<LayerSpec> model;
  TrainSpec train;
  InstrumentSpec instruments;
};

/// The tasks and layer kinds an experiment may name.
const std::vector<std::string>& task_names();
const std::vector<std::string>& layer_kinds();

/// Reads and checks an experiment file; throws one kiln::Error listing every problem.
Experiment read_experiment(const std::string& path, const std::vector<std::string>& overrides = {});
/// The same from text (`name` stands for the file).
Experiment parse_experiment(const std::string& text, const std::string& name, const std::vector<std::string>& overrides = {});

}  // namespace kiln::experiment

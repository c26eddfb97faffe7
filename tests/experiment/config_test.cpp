// Experiment files: every problem reported at once, each with file:line:column and its key's path.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "experiment/experiment.hpp"
#include "tensor/error.hpp"

namespace kiln::experiment {
namespace {

const char* kGood = R"(seed: 3
data:
  task: adding
  length: 20
model:
  - recurrent: {cell: gru, hidden: 8}
  - linear: {out: auto}
train:
  steps: 50
  optimizer: {name: sgd, lr: 0.1, momentum: 0.9}
)";

std::string error_of(const std::string& text, const std::vector<std::string>& set = {}) {
  try {
    parse_experiment(text, "exp.yaml", set);
  } catch (const Error& e) {
    return e.what();
  }
  return "accepted";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(ExperimentFile, AGoodFileIsReadWithDefaultsFilledIn) {
  const Experiment e = parse_experiment(kGood, "exp.yaml");
  EXPECT_EQ(e.seed, 3u);
  EXPECT_EQ(e.data.task, "adding");
  EXPECT_EQ(e.data.length, 20);
  ASSERT_EQ(e.model.size(), 2u);
  EXPECT_EQ(e.model[0].cell, "gru");
  EXPECT_EQ(e.model[0].size, 8);
  EXPECT_EQ(e.model[1].size, 0);  // auto
  EXPECT_EQ(e.train.optimizer.name, "sgd");
  EXPECT_DOUBLE_EQ(e.train.optimizer.momentum, 0.9);
  EXPECT_EQ(e.train.checkpoint_every, 12);  // a quarter of the steps
  EXPECT_EQ(e.output, "runs/exp");
  EXPECT_FALSE(e.output_given);
}

TEST(ExperimentFile, EveryProblemIsReportedWithItsPlaceAndPath) {
  const std::string text = R"(seed: -1
data:
  task: adding
  lenght: 20
model:
  - recurrent: {cell: lstn, hidden: many}
  - lineer: {out: 1}
train:
  steps: 50
  optimizer: {name: adam, lr: fast}
)";
  const std::string e = error_of(text);
  EXPECT_TRUE(contains(e, "exp.yaml: 6 problems in the experiment:")) << e;
  EXPECT_LT(e.find("exp.yaml:6:37"), e.find("exp.yaml:7:5")) << "in the file's order: " << e;
  EXPECT_TRUE(contains(e, "exp.yaml:1:7: seed: must be a whole number from 0 to")) << e;
  EXPECT_TRUE(contains(e, "exp.yaml:4:3: data.lenght: unknown key (did you mean 'length'?)")) << e;
  EXPECT_TRUE(contains(e, "exp.yaml:6:23: model[0].recurrent.cell: must be one of rnn_tanh")) << e;
  EXPECT_TRUE(contains(e, "got 'lstn' (did you mean 'lstm'?)")) << e;
  EXPECT_TRUE(contains(e, "exp.yaml:6:37: model[0].recurrent.hidden: must be a whole number from 1 to 1048576, got 'many'")) << e;
  EXPECT_TRUE(contains(e, "exp.yaml:7:5: model[1]: unknown kind 'lineer' (did you mean 'linear'?)")) << e;
  EXPECT_TRUE(contains(e, "exp.yaml:10:31: train.optimizer.lr: must be a number from 0 to 100, got 'fast'")) << e;
}

TEST(ExperimentFile, MissingKeysWrongShapesAndTwiceGivenKeysAreNamed) {
  EXPECT_TRUE(contains(error_of("data: {batch: 4}\nmodel: []\n"), "exp.yaml:1:7: data.task: missing: one of adding, copy"));
  EXPECT_TRUE(contains(error_of("data: [1, 2]\n"), "exp.yaml:1:7: data: must be a map of keys, got a list"));
  EXPECT_TRUE(contains(error_of("seed: 1\nseed: 2\n"), "exp.yaml:2:1: seed: given twice (first on line 1); say it once"));
  EXPECT_TRUE(contains(error_of("- 1\n- 2\n"), "exp.yaml:1:1: an experiment file is a map of sections"));
  EXPECT_TRUE(contains(error_of("data: {task: adding\n"), "exp.yaml:2:1: not YAML"));
  EXPECT_TRUE(contains(error_of(std::string(kGood) + "train2: {}\n"), "train2: unknown key (did you mean 'train'?)"));
  // Aliases that expand to billions of values ("billion laughs") are refused before anything walks them.
  std::string laughs = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 10; ++i)
    laughs += fmt::format("a{}: &a{} [*a{}, *a{}, *a{}, *a{}, *a{}, *a{}, *a{}, *a{}, *a{}, *a{}]\n", i, i, i - 1, i - 1, i - 1,
                          i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
  EXPECT_TRUE(contains(error_of(laughs), "exp.yaml: the experiment holds more than 100000 values"));
}

TEST(ExperimentFile, SetOverridesAnyKeyAndIsNamedInErrors) {
  const Experiment e = parse_experiment(kGood, "exp.yaml", {"train.steps=7", "model[0].recurrent.hidden=16", "output=/tmp/x"});
  EXPECT_EQ(e.train.steps, 7);
  EXPECT_EQ(e.model[0].size, 16);
  EXPECT_EQ(e.output, "/tmp/x");
  EXPECT_TRUE(e.output_given);
  EXPECT_TRUE(contains(e.resolved_yaml, "steps: 7")) << e.resolved_yaml;
  EXPECT_TRUE(contains(error_of(kGood, {"train.steps=-3"}), "--set train.steps=-3: train.steps: must be a whole number from 1"));
  EXPECT_TRUE(contains(error_of(kGood, {"train.stpes=3"}), "train.stpes: unknown key (did you mean 'steps'?)"));
  EXPECT_TRUE(contains(error_of(kGood, {"steps"}), "--set steps: expected KEY=VALUE"));
  EXPECT_TRUE(contains(error_of(kGood, {"model[9].recurrent.hidden=3"}), "there is no item [9]"));
  EXPECT_TRUE(contains(error_of(kGood, {"seed.x=1"}), "--set seed.x=1: cannot set 'x' inside '3'"));
}

TEST(ExperimentFile, TheResolvedDocumentReadsBackTheSame) {
  const Experiment e = parse_experiment(kGood, "exp.yaml", {"train.steps=9"});
  const Experiment again = parse_experiment(e.resolved_yaml, "config.yaml");
  EXPECT_EQ(again.resolved_yaml, e.resolved_yaml);
  EXPECT_EQ(again.train.steps, 9);
}

TEST(ExperimentFile, EpochsOrStepsButNotBoth) {
  const std::string file = "data: {task: csv_classification, file: x.csv}\nmodel: [{recurrent: {hidden: 4}}]\ntrain: {epochs: 3}\n";
  const Experiment e = parse_experiment(file, "exp.yaml");
  EXPECT_EQ(e.train.epochs, 3);
  EXPECT_EQ(e.train.eval_every, 0);  // once an epoch, resolved when the run is made
  EXPECT_TRUE(contains(error_of(file, {"train.steps=10"}), "train.epochs: give steps or epochs, not both"));
  EXPECT_TRUE(contains(error_of(file, {"train.epochs=0"}), "train.epochs: must be a whole number from 1"));
}

TEST(ExperimentFile, EncoderDecodersAreAWholeModelForASeq2SeqTask) {
  const Experiment e = parse_experiment(R"(data: {task: date_translation}
model:
  seq2seq: {cell: gru, hidden: 16, attention: luong, score: dot, input_feeding: false, teacher_forcing: 0.5}
)", "exp.yaml");
  ASSERT_EQ(e.model.size(), 1u);
  EXPECT_EQ(e.model[0].kind, "seq2seq");
  EXPECT_EQ(e.model[0].path, "model.seq2seq");
  EXPECT_EQ(e.model[0].score, "dot");
  EXPECT_FALSE(e.model[0].input_feeding);
  EXPECT_DOUBLE_EQ(e.model[0].teacher_forcing, 0.5);
  // Luong's options belong to Luong attention.
  EXPECT_TRUE(contains(error_of("data: {task: date_translation}\nmodel: {seq2seq: {hidden: 8, attention: bahdanau, score: dot}}\n"),
                       "model.seq2seq.score: unknown key"));
  EXPECT_TRUE(contains(error_of("data: {task: date_translation}\nmodel: {transformer: {d_model: 8, heads: 0}}\n"),
                       "exp.yaml:2:42: model.transformer.heads: must be a whole number from 1"));
  EXPECT_TRUE(contains(error_of("data: {task: date_translation}\nmodel: {seq2sec: {hidden: 8}}\n"),
                       "unknown kind 'seq2sec' (did you mean 'seq2seq'?)"));
  EXPECT_TRUE(contains(error_of("data: {task: csv_forecast, file: x.csv, columns: [a, [b]]}\nmodel: []\n"),
                       "exp.yaml:1:54: data.columns[1]: must be a text, got a list"));
  EXPECT_TRUE(contains(error_of("data: {task: csv_classification}\nmodel: []\n"), "data.file: missing: a text is needed"));
}

}  // namespace
}  // namespace kiln::experiment

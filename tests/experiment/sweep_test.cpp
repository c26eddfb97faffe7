// Sweep files: the grid's runs, their folders and overrides, the baseline, errors with their position;
// the comparison of variants by Welch's t-test (Note [Beyond noise]); wildcard keys (Note [Wildcard keys]).

#include <filesystem>

#include <gtest/gtest.h>

#include "experiment/experiment.hpp"
#include "experiment/sweep.hpp"
#include "io/atomic_file.hpp"
#include "tensor/error.hpp"

namespace kiln::experiment {
namespace {

namespace fs = std::filesystem;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

class Sweep : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kiln_sweep_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "exp");
    io::write_file_atomic((dir_ / "exp/a.yaml").string(), R"(data: {task: adding, length: 10, batch: 4}
model:
  - recurrent: {cell: lstm, hidden: 4}
  - linear: {out: auto}
train: {steps: 10}
)");
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& text) {
    const std::string path = (dir_ / "sweep.yaml").string();
    io::write_file_atomic(path, text);
    return path;
  }
  std::string error_of(const std::string& text) {
    try {
      read_sweep(write(text));
    } catch (const Error& e) {
      return e.what();
    }
    return "accepted";
  }
  fs::path dir_;
};

TEST_F(Sweep, TheGridsProductIsTheRunsEachWithItsFolderAndOverrides) {
  const SweepPlan p = read_sweep(write(R"(output: )" + (dir_ / "out").string() + R"(
parallel: 3
experiments: {adding: exp/a.yaml}
grid:
  model[*].recurrent.cell: [lstm, gru]
  seed: [1, 2, 3]
set: {train: {steps: 5}, data.batch: 2}
baseline: gru
)"));
  EXPECT_EQ(p.parallel, 3);
  ASSERT_EQ(p.runs.size(), 6u);
  EXPECT_EQ(p.baseline, "gru");
  EXPECT_EQ(p.baseline_key, "model[*].recurrent.cell");
  EXPECT_EQ(p.runs[0].reference, "cell=gru");
  const SweepRun& r = p.runs[4];  // gru, seed 2
  EXPECT_EQ(r.variant, "cell=gru");
  EXPECT_EQ(r.replicate, "2");
  EXPECT_EQ(fs::path(r.dir).lexically_relative(dir_ / "out").string(), "adding/cell-gru_seed-2");
  EXPECT_EQ(r.overrides, (std::vector<std::string>{"train.steps=5", "data.batch=2", "model[*].recurrent.cell=gru", "seed=2",
                                                   "output=" + r.dir}));
  const Experiment e = read_experiment(r.file, r.overrides);
  EXPECT_EQ(e.model[0].cell, "gru");
  EXPECT_EQ(e.train.steps, 5);
  EXPECT_EQ(e.seed, 2u);
}

TEST_F(Sweep, ProblemsAreReportedWithTheirPositionBeforeAnythingRuns) {
  const std::string e = error_of(R"(experiments: {adding: exp/missing.yaml}
grid:
  seed: [1, 1]
paralel: 2
baseline: nothing
)");
  EXPECT_TRUE(contains(e, "sweep.yaml:1:23: experiments.adding: no experiment file 'exp/missing.yaml'")) << e;
  EXPECT_TRUE(contains(e, "sweep.yaml:3:9: grid.seed: '1' is given twice")) << e;
  EXPECT_TRUE(contains(e, "sweep.yaml:4:1: paralel: unknown key (did you mean 'parallel'?)")) << e;
  EXPECT_TRUE(contains(e, "sweep.yaml:5:11: baseline: 'nothing' is no value of the grid's keys ()")) << e;
  EXPECT_TRUE(contains(e, "problems in the sweep")) << e;
  // A grid value no experiment takes stops the sweep before any run starts, naming the run.
  const std::string bad = error_of("experiments: {adding: exp/a.yaml}\ngrid:\n  model[*].recurrent.hidden: [4, -1]\n");
  EXPECT_TRUE(contains(bad, "a run of the sweep would not start")) << bad;
  EXPECT_TRUE(contains(bad, "(hidden=-1)")) << bad;
  EXPECT_TRUE(contains(bad, "model[0].recurrent.hidden: must be a whole number")) << bad;
  EXPECT_TRUE(contains(error_of("experiments: {adding: exp/a.yaml}\ngrid: {output: [x]}\n"), "the sweep chooses each run's output folder"));
}

RunOutcome finished(double metric) {
  RunOutcome o;
  o.state = RunOutcome::State::Finished;
  o.eval_metric = o.eval_loss = metric;
  o.metric = "mse";
  o.ms_per_step = 1;
  o.path = "generic";
  return o;
}

// Welch's t-test against the baseline: a variant far outside the seeds' spread differs; one inside it
// does not; a failed run is a row of its own and the others still count.
TEST_F(Sweep, VariantsDifferFromTheBaselineOnlyBeyondSeedNoise) {
  const SweepPlan p = read_sweep(write("output: " + (dir_ / "out").string() + R"(
experiments: {adding: exp/a.yaml}
grid:
  model[*].recurrent.cell: [lstm, gru, rnn_tanh, mgu]
  seed: [1, 2, 3]
)"));
  std::vector<RunOutcome> o;
  for (double v : {0.10, 0.11, 0.12}) o.push_back(finished(v));  // lstm (the baseline)
  for (double v : {0.105, 0.115, 0.125}) o.push_back(finished(v));  // gru: within noise
  for (double v : {0.30, 0.31, 0.32}) o.push_back(finished(v));  // rnn_tanh: worse
  o.push_back(finished(0.01)), o.push_back(finished(0.011)), o.push_back(RunOutcome{});  // mgu: better, one failed
  o.back().error = "step 3: the loss is nan";
  const std::string table = write_sweep_results(p, o);
  EXPECT_TRUE(contains(table, "cell=gru")) << table;
  EXPECT_TRUE(contains(table, "same (p=")) << table;
  EXPECT_TRUE(contains(table, "- worse (p=")) << table;
  EXPECT_TRUE(contains(table, "+ better (p=")) << table;
  EXPECT_TRUE(contains(table, "2/3 (1 failed)")) << table;
  EXPECT_TRUE(contains(table, "worse beyond seed noise: cell=rnn_tanh; better: cell=mgu; not distinguishable from it: cell=gru")) << table;
  EXPECT_TRUE(contains(table, "1 run(s) failed")) << table;
  const std::string csv = io::read_file((dir_ / "out/sweep.csv").string());
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 13);
  EXPECT_TRUE(contains(csv, "failed,0,,0,0,\"\",")) << csv;
  EXPECT_TRUE(contains(io::read_file((dir_ / "out/report.html").string()), "<td class=\"worse\">worse (p="));
}

TEST(WildcardKeys, SetAKeyInEveryItemThatHasIt) {
  const std::string text = R"(data: {task: char_lm, length: 10}
model:
  - embedding: {dim: 4}
  - recurrent: {cell: lstm, hidden: 8}
  - recurrent: {cell: lstm, hidden: 8}
  - linear: {out: auto}
)";
  const Experiment e = parse_experiment(text, "w.yaml", {"model[*].recurrent.cell=gru"});
  EXPECT_EQ(e.model[1].cell, "gru");
  EXPECT_EQ(e.model[2].cell, "gru");
  EXPECT_EQ(e.model[0].kind, "embedding");
  try {
    parse_experiment(text, "w.yaml", {"model[*].pool.mode=max"});
    FAIL();
  } catch (const Error& err) {
    EXPECT_TRUE(contains(err.what(), "--set model[*].pool.mode=max: no item of the list has the key after [*]")) << err.what();
  }
  try {
    parse_experiment(text, "w.yaml", {"model[*].recurrent.hiden=4"});
    FAIL();
  } catch (const Error& err) {  // the concrete key is named, with the override that set it
    EXPECT_TRUE(contains(err.what(), "--set model[*].recurrent.hiden=4: model[1].recurrent.hiden: unknown key (did you mean 'hidden'?)")) << err.what();
  }
}

}  // namespace
}  // namespace kiln::experiment

// The tasks an experiment names: what their batches hold, and files refused with the key, row and column.

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "experiment/build_model.hpp"
#include "experiment/tasks.hpp"
#include "tensor/error.hpp"

namespace kiln::experiment {
namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string write(const std::string& name, const std::string& text) {
  const std::string path = (std::filesystem::temp_directory_path() / ("kiln_tasks_test_" + name)).string();
  std::ofstream(path) << text;
  return path;
}

std::string error_of(const DataSpec& d) {
  try {
    make_task(d, kFloat64, 0);
  } catch (const Error& e) {
    return e.what();
  }
  return "accepted";
}

std::int64_t at(const Tensor& t, std::int64_t i) { return t.data<std::int64_t>()[i]; }

TEST(Tasks, DateTranslationPairsEachSourceWithItsShiftedIsoTarget) {
  DataSpec d;
  d.task = "date_translation";
  d.batch = 16;
  const auto task = make_task(d, kFloat32, 3);
  ASSERT_TRUE(task->seq2seq());
  Generator g(1);
  const Batch b = task->train_batch(g);
  ASSERT_EQ(b.x.size(0), 16);
  ASSERT_EQ(b.y.shape(), (Shape{16, 11}));
  ASSERT_EQ(b.tgt_in.shape(), (Shape{16, 11}));
  for (std::int64_t i = 0; i < 16; ++i) {
    std::vector<std::int64_t> target, source;
    for (std::int64_t t = 0; t < 11; ++t) target.push_back(at(b.y, i * 11 + t));
    EXPECT_EQ(target.back(), kEosId);
    EXPECT_EQ(at(b.tgt_in, i * 11), kBosId);
    for (std::int64_t t = 1; t < 11; ++t) EXPECT_EQ(at(b.tgt_in, i * 11 + t), target[static_cast<std::size_t>(t - 1)]);
    const std::string iso = task->decode(target);
    ASSERT_EQ(iso.size(), 10u) << iso;
    EXPECT_EQ(iso[4], '-');
    const std::int64_t n = at(b.lengths, i);
    for (std::int64_t t = 0; t < b.x.size(1); ++t) {
      if (t < n) source.push_back(at(b.x, i * b.x.size(1) + t));
      else EXPECT_EQ(at(b.x, i * b.x.size(1) + t), kPadId);
    }
    EXPECT_EQ(task->encode(task->decode_input(source)), source);
    EXPECT_NE(task->decode_input(source).find(iso.substr(2, 2)), std::string::npos) << "the year's digits: " << task->decode_input(source);
  }
  // The evaluation batches are fixed and hold other dates than training draws.
  const Batch e1 = task->eval_batch(0), e2 = task->eval_batch(0);
  EXPECT_EQ(e1.x.to_vector(), e2.x.to_vector());
}

TEST(Tasks, TaggingLabelsPaddingToBeIgnored) {
  DataSpec d;
  d.task = "tagging";
  d.batch = 8;
  d.length = 10;
  const auto task = make_task(d, kFloat32, 0);
  Generator g(2);
  const Batch b = task->train_batch(g);
  for (std::int64_t i = 0; i < 8; ++i) {
    const std::int64_t n = at(b.lengths, i);
    ASSERT_GE(n, 1);
    ASSERT_LE(n, 10);
    for (std::int64_t t = 0; t < 10; ++t) EXPECT_EQ(at(b.y, i * 10 + t) == kIgnoreLabel, t >= n);
  }
}

TEST(Tasks, WordModelKeepsTheFrequentWordsAndReadsTheRestAsUnknown) {
  std::string text;
  for (int i = 0; i < 200; ++i) text += "the cat sat on the mat. The dog ate a bone!\n";
  text += "zebra\n";
  DataSpec d;
  d.task = "word_lm";
  d.text = {write("words.txt", text)};
  d.length = 8;
  d.vocab = 8;
  d.batch = 4;
  const auto task = make_task(d, kFloat32, 0);
  EXPECT_EQ(task->vocabulary(), 8);
  const auto ids = task->encode("The the zebra.");
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids[0], ids[1]);  // lower-cased
  EXPECT_EQ(ids[0], 1);       // the most frequent
  EXPECT_EQ(ids[2], 0);       // <unk>
  EXPECT_EQ(task->decode({ids[0], ids[3]}), "the.");
  EXPECT_EQ(task->decode(task->encode("the a!\nthe bone.")), "the a!\nthe bone.");  // spaces between words, none at a line's start
  EXPECT_EQ(task->unknown_id(), 0);
  Generator g(0);
  const Batch b = task->train_batch(g);
  for (std::int64_t i = 0; i < 4; ++i)
    for (std::int64_t t = 0; t + 1 < 8; ++t) EXPECT_EQ(at(b.y, i * 8 + t), at(b.x, i * 8 + t + 1));
}

TEST(Tasks, CsvClassificationReadsVariableLengthRowsAndStandardises) {
  DataSpec d;
  d.task = "csv_classification";
  d.file = write("classes.csv", "a,label,b,c\n1,10,2,3\n4,2,5,\n7,10,,\n\"1e0\",2,2,3\n5,10,5,5\n");
  d.batch = 8;
  d.eval_fraction = 0.2;
  const auto task = make_task(d, kFloat64, 0);
  EXPECT_EQ(task->outputs(), 2);
  EXPECT_EQ(task->steps(), 3);
  EXPECT_EQ(task->decode({0, 1}), "2 10");  // numeric order, not "10" < "2"
  EXPECT_EQ(task->eval_batch_count(), 1);
  const Batch e = task->eval_batch(0);
  ASSERT_EQ(e.x.size(0), 1);  // a fifth of five rows
  Generator g(0);
  const Batch b = task->train_batch(g);
  ASSERT_EQ(b.x.dim(), 3);
  for (std::int64_t i = 0; i < 8; ++i) {
    const std::int64_t n = at(b.lengths, i);
    ASSERT_GE(n, 1);
    for (std::int64_t t = n; t < b.x.size(1); ++t) EXPECT_EQ(b.x.data<double>()[i * b.x.size(1) + t], 0.0);
  }
  // Standardised with the training rows' values: their mean is 0.
  double total = 0, count = 0;
  for (std::int64_t i = 0; i < 8; ++i)
    for (std::int64_t t = 0; t < at(b.lengths, i); ++t) total += b.x.data<double>()[i * b.x.size(1) + t], ++count;
  EXPECT_LT(std::abs(total / count), 1.5);
}

TEST(Tasks, CsvTrainingTakesShuffledPassesThatAPositionResumes) {
  std::string csv = "label,a\n";
  for (int r = 0; r < 10; ++r) csv += (r % 2 ? "x," : "y,") + std::to_string(r) + "\n";
  DataSpec d;
  d.task = "csv_classification";
  d.file = write("passes.csv", csv);
  d.batch = 3;
  d.eval_fraction = 0.2;
  const auto task = make_task(d, kFloat64, 0);
  ASSERT_EQ(task->train_examples(), 8);
  Generator g(0);
  // Two passes (16 examples) in batches of 3: each pass gives every training row once.
  std::vector<double> seen;
  for (int b = 0; b < 6; ++b) {
    const auto x = task->train_batch(g).x.to_vector();
    seen.insert(seen.end(), x.begin(), x.end());
  }
  for (std::size_t pass = 0; pass < 2; ++pass) {
    std::vector<double> rows(seen.begin() + static_cast<std::ptrdiff_t>(pass * 8), seen.begin() + static_cast<std::ptrdiff_t>(pass * 8 + 8));
    std::sort(rows.begin(), rows.end());
    EXPECT_EQ(std::adjacent_find(rows.begin(), rows.end()), rows.end()) << "a row twice in pass " << pass;
  }
  EXPECT_NE(std::vector<double>(seen.begin(), seen.begin() + 8), std::vector<double>(seen.begin() + 8, seen.begin() + 16))
      << "each pass in its own order";
  // A task restored to a position gives what the first gave next.
  const std::string at = task->position();
  EXPECT_EQ(at, "18");
  const auto next = task->train_batch(g).x.to_vector();
  const auto again = make_task(d, kFloat64, 0);
  again->set_position(at);
  EXPECT_EQ(again->train_batch(g).x.to_vector(), next);
  EXPECT_THROW(again->set_position("x7"), Error);
  EXPECT_THROW(again->set_position("-1"), Error);
}

TEST(Tasks, CsvFilesAreRefusedWithTheKeyRowAndColumn) {
  DataSpec d;
  d.task = "csv_classification";
  d.file = write("gap.csv", "label,a,b,c\nx,1,,3\ny,1,2,3\n");
  EXPECT_TRUE(contains(error_of(d), "row 2: column 'c' holds a value after the sequence ended")) << error_of(d);
  d.file = write("ragged.csv", "label,a,b\nx,1,2\ny,1\n");
  EXPECT_TRUE(contains(error_of(d), "data.file: " + d.file + ": row 3 has 2 fields, the header 3")) << error_of(d);
  d.file = write("quote.csv", "label,a\nx,\"1\n");
  EXPECT_TRUE(contains(error_of(d), "not valid CSV")) << error_of(d);
  d.file = write("word.csv", "label,a,b\nx,1,2\ny,one,2\n");
  EXPECT_TRUE(contains(error_of(d), "row 3, column 'a': 'one' is not a finite number")) << error_of(d);
  d.file = write("one_class.csv", "label,a\nx,1\nx,2\n");
  EXPECT_TRUE(contains(error_of(d), "holds one class")) << error_of(d);
  d.label = "lable";
  EXPECT_TRUE(contains(error_of(d), "data.label: " + d.file + " has no column 'lable' (did you mean 'label'?)")) << error_of(d);
  d.file = "/nonexistent/file.csv";
  EXPECT_TRUE(contains(error_of(d), "data.file: ")) << error_of(d);
  d.file = write("empty.csv", "");
  EXPECT_TRUE(contains(error_of(d), "needs a header row")) << error_of(d);
  DataSpec f;
  f.task = "csv_forecast";
  f.file = write("short.csv", "v\n1\n2\n3\n");
  f.length = 4;
  EXPECT_TRUE(contains(error_of(f), "holds 3 rows; length 4 and horizon 1")) << error_of(f);
  f.file = write("words_only.csv", "name\nx\ny\n");
  EXPECT_TRUE(contains(error_of(f), "data.columns: no column")) << error_of(f);
  f.file = write("forecast.csv", "a,b\n1,2\n");
  f.targets = {"c"};
  EXPECT_TRUE(contains(error_of(f), "data.targets: ")) << error_of(f);
}

TEST(Tasks, CsvForecastWindowsPredictTheTargetHorizonRowsAhead) {
  std::string csv = "time,x,y\n";
  for (int r = 0; r < 100; ++r) csv += "t" + std::to_string(r) + "," + std::to_string(r) + "," + std::to_string(r * r) + "\n";
  DataSpec d;
  d.task = "csv_forecast";
  d.file = write("forecast.csv", csv);
  d.length = 5;
  d.horizon = 3;
  d.columns = {"x"};
  d.targets = {"y"};
  d.batch = 4;
  d.eval_fraction = 0.1;
  const auto task = make_task(d, kFloat64, 0);
  EXPECT_EQ(task->input_features(), 1);
  EXPECT_EQ(task->outputs(), 1);
  EXPECT_EQ(task->eval_batch_count(), 3);  // ten target rows
  // x standardised over the first 90 rows: mean 44.5; invert with two points to find the rows.
  Generator g(0);
  const Batch b = task->train_batch(g);
  const double* x = b.x.data<double>();
  const double* y = b.y.data<double>();
  const double step = x[1] - x[0];
  ASSERT_GT(step, 0);
  std::vector<double> ys;
  for (int r = 0; r < 90; ++r) ys.push_back(r * r);
  double mean = 0, var = 0;
  for (double v : ys) mean += v;
  mean /= 90;
  for (double v : ys) var += (v - mean) * (v - mean);
  const double scale = 1 / std::sqrt(var / 90);
  for (std::int64_t i = 0; i < 4; ++i) {
    const double row = x[i * 5] / step + 44.5;  // the window's first row
    const double last = std::round(row) + 4 + 3;
    EXPECT_NEAR(y[i], (last * last - mean) * scale, 1e-9) << "window at row " << row;
  }
  // The evaluation windows' targets are the last ten rows, in order.
  const Batch e = task->eval_batch(0);
  EXPECT_NEAR(e.y.data<double>()[0], (90.0 * 90.0 - mean) * scale, 1e-9);
}

TEST(Tasks, APaddedSequenceGivesWhatItGivesAlone) {
  // Recurrent layers (both directions), a Transformer encoder and pooling see only each sequence's steps.
  for (const char* model : {"recurrent: {cell: gru, hidden: 6, bidirectional: true, return_sequences: false}",
                            "transformer_encoder: {layers: 1, heads: 1, feedforward: 8, dropout: 0}\n  - pool: {mode: mean}",
                            "recurrent: {cell: lstm, hidden: 6}\n  - pool: {mode: max}"}) {
    Experiment e = parse_experiment(std::string("data: {task: csv_classification, file: ") +
                                        write("pad.csv", "label,a,b,c,d\nx,1,2,3,4\ny,5,6,,\nx,1,1,1,\ny,2,3,4,5\nx,3,,,\n") +
                                        "}\nmodel:\n  - " + model + "\n  - linear: {out: auto}\n", "pad.yaml");
    e.dtype = kFloat64;
    const auto task = make_task(e.data, kFloat64, 0);
    manual_seed(0);
    auto m = build_model(e, *task);
    m->module().to(kFloat64);
    m->module().eval();
    Generator g(0);
    Batch b = task->train_batch(g);
    const Tensor out = m->forward(b).value();
    for (std::int64_t i = 0; i < b.x.size(0); ++i) {
      const std::int64_t n = at(b.lengths, i), F = b.x.size(2), T = b.x.size(1);
      Batch alone;
      std::vector<double> row(b.x.data<double>() + i * T * F, b.x.data<double>() + (i * T + n) * F);
      alone.x = from_data(row, {1, n, F});
      alone.lengths = from_data(std::vector<std::int64_t>{n});
      const auto want = m->forward(alone).value().to_vector();
      for (std::size_t k = 0; k < want.size(); ++k)
        EXPECT_NEAR(out.data<double>()[i * out.size(1) + static_cast<std::int64_t>(k)], want[k], 1e-12) << model << " row " << i;
    }
  }
}

}  // namespace
}  // namespace kiln::experiment

namespace kiln::experiment {
namespace {

std::string build_error(const std::string& yaml) {
  try {
    const Experiment e = parse_experiment(yaml, "exp.yaml");
    const auto task = make_task(e.data, e.dtype, e.seed);
    build_model(e, *task);
  } catch (const Error& e) {
    return e.what();
  }
  return "accepted";
}

TEST(Models, AModelThatDoesNotFitItsTaskIsNamedByItsPath) {
  EXPECT_TRUE(contains(build_error("data: {task: date_translation}\nmodel: [{embedding: {dim: 4}}, {recurrent: {hidden: 4}}]\n"),
                       "model[0].embedding: the task 'date_translation' translates one sequence into another"));
  EXPECT_TRUE(contains(build_error("data: {task: tagging}\nmodel: {seq2seq: {hidden: 4}}\n"),
                       "model.seq2seq: an encoder-decoder needs a seq2seq task"));
  EXPECT_TRUE(contains(build_error("data: {task: date_translation}\nmodel: {transformer: {d_model: 10, heads: 4}}\n"),
                       "model.transformer: d_model 10 does not split into 4 heads"));
  EXPECT_TRUE(contains(build_error("data: {task: sentiment}\nmodel: [{embedding: {dim: 6}}, {transformer_encoder: {heads: 4}}, "
                                   "{pool: {}}, {linear: {out: auto}}]\n"),
                       "model[1].transformer_encoder: 6 features do not split into 4 heads"));
  EXPECT_TRUE(contains(build_error("data: {task: sentiment}\nmodel: [{embedding: {dim: 4}}, {pool: {}}, {pool: {}}]\n"),
                       "model[2].pool: needs a sequence"));
  EXPECT_TRUE(contains(build_error("data: {task: tagging, length: 30}\nmodel: [{embedding: {dim: 4}}, {positional: {max_len: 20}}, "
                                   "{linear: {out: auto}}]\n"),
                       "model[1].positional: max_len 20 is shorter than the task's sequences (30 steps)"));
  EXPECT_EQ(build_error("data: {task: date_translation}\nmodel: {transformer: {d_model: 8, heads: 2, max_len: 64}}\n"), "accepted");
}

}  // namespace
}  // namespace kiln::experiment

namespace kiln::experiment {
namespace {

// An experiment file's `forget_bias` reaches the layer; a cell without a forget gate is refused at its path.
TEST(Models, ForgetBiasFromAnExperimentFile) {
  const Experiment e = parse_experiment("data: {task: adding, length: 5, batch: 2}\nmodel:\n  - recurrent: {cell: lstm, hidden: 3, "
                                        "forget_bias: 2.5}\n  - linear: {out: auto}\n", "exp.yaml");
  const auto task = make_task(e.data, e.dtype, e.seed);
  const auto m = build_model(e, *task);
  const auto b = m->module().parameter("0.bias_ih_l0").value().to_vector();
  for (std::size_t j = 3; j < 6; ++j) EXPECT_EQ(b[j], 2.5);
  EXPECT_TRUE(contains(build_error("data: {task: adding}\nmodel: [{recurrent: {cell: gru, hidden: 3, forget_bias: 1}}, "
                                   "{linear: {out: auto}}]\n"),
                       "model[0].recurrent")) << build_error("data: {task: adding}\nmodel: [{recurrent: {cell: gru, hidden: 3, forget_bias: 1}}, {linear: {out: auto}}]\n");
}

}  // namespace
}  // namespace kiln::experiment

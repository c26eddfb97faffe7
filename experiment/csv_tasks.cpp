// The CSV tasks (experiment/tasks.hpp).
//
// csv_classification: a row per sequence, a label column and the values of the steps in the others
// (step-major, `features` values per step, like the UCR archive's files). A sequence ends at its first
// missing value ("" or nan), so rows may differ in length; a value missing in the middle of a step is an
// error. Classes are the labels' distinct values (in numeric order when all are numbers). Rows are
// split into training and evaluation by a shuffle drawn from the seed; training takes shuffled passes
// over its rows (epochs); inputs are standardised with
// the training rows' mean and standard deviation per feature.
//
// csv_forecast: a row per time step. A window of `length` rows of the input columns predicts the
// target columns `horizon` rows after its last; the last `eval_fraction` of the rows are evaluation
// targets. Every column is standardised with the training rows' mean and standard deviation, and the
// metric is the mean squared error in those units.

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "experiment/csv_table.hpp"
#include "experiment/task_kit.hpp"
#include "tensor/error.hpp"

namespace kiln::experiment {
namespace {

struct Moments {
  double mean = 0, scale = 1;
};

Moments moments(const std::vector<double>& v) {
  Moments m;
  if (v.empty()) return m;
  for (double x : v) m.mean += x;
  m.mean /= static_cast<double>(v.size());
  double var = 0;
  for (double x : v) var += (x - m.mean) * (x - m.mean);
  var /= static_cast<double>(v.size());
  m.scale = var > 1e-24 ? 1 / std::sqrt(var) : 1;
  return m;
}

// Batches of the evaluation rows in order; the last one may be short.
std::int64_t batches_of(std::size_t n, std::int64_t batch) { return static_cast<std::int64_t>((n + static_cast<std::size_t>(batch) - 1) / static_cast<std::size_t>(batch)); }

class CsvClassification : public Task {
 public:
  CsvClassification(const DataSpec& d, DType dtype, std::uint64_t seed) : d_(d), dtype_(dtype) {
    const CsvTable t = read_csv(d.file, "data.file");
    const std::size_t label = t.column(d.label, "data.label");
    const std::size_t values = t.header.size() - 1;
    KILN_CHECK(values >= static_cast<std::size_t>(d.features) && values % static_cast<std::size_t>(d.features) == 0,
               "data.features: {} has {} value columns besides '{}', not a whole number of steps of {} features", d.file, values,
               d.label, d.features);
    T_ = static_cast<std::int64_t>(values) / d.features;
    std::vector<std::string> labels;
    bool numeric = true;
    for (std::size_t r = 0; r < t.rows.size(); ++r) labels.push_back(t.rows[r][label]), numeric = numeric && t.is_number(r, label);
    std::vector<std::string> classes = labels;
    std::sort(classes.begin(), classes.end(), [&](const std::string& a, const std::string& b) {
      return numeric ? std::stod(a) < std::stod(b) : a < b;
    });
    classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
    KILN_CHECK(classes.size() >= 2, "data.label: column '{}' of {} holds one class ('{}'); a classifier needs two", d.label, d.file,
               classes.front().substr(0, 40));
    for (std::size_t c = 0; c < classes.size(); ++c) class_of_[classes[c]] = static_cast<std::int64_t>(c);
    classes_ = classes;
    // Each row's values up to its first missing one.
    for (std::size_t r = 0; r < t.rows.size(); ++r) {
      Row row{class_of_[labels[r]], {}};
      std::size_t c = 0, step = 0;
      for (; step < static_cast<std::size_t>(T_); ++step) {
        std::size_t present = 0;
        for (std::int64_t f = 0; f < d.features; ++f) present += !t.is_missing(r, value_column(label, step * d.features + f));
        if (present == 0) break;
        for (std::int64_t f = 0; f < d.features; ++f, ++c) row.values.push_back(t.number(r, value_column(label, c)));
      }
      for (; step < static_cast<std::size_t>(T_); ++step)  // after the end, nothing but missing values
        for (std::int64_t f = 0; f < d.features; ++f) {
          const std::size_t col = value_column(label, step * d.features + f);
          KILN_CHECK(t.is_missing(r, col), "{}: row {}: column '{}' holds a value after the sequence ended (a missing value "
                     "before it)", d.file, r + 2, t.header[col]);
        }
      KILN_CHECK(!row.values.empty(), "{}: row {}: no values", d.file, r + 2);
      rows_.push_back(std::move(row));
    }
    // The split, and the training rows' moments per feature.
    std::vector<std::size_t> order(rows_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    Generator g(seed ^ 0x5851f42d4c957f2dull);
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[g.next_u64() % i]);
    KILN_CHECK(order.size() >= 2, "data.file: {} holds {} row; training and evaluation need two at least", d.file, order.size());
    const auto n_eval = std::clamp<std::size_t>(static_cast<std::size_t>(std::llround(d.eval_fraction * static_cast<double>(order.size()))),
                                                1, order.size() - 1);
    eval_.assign(order.end() - static_cast<std::ptrdiff_t>(n_eval), order.end());
    train_.assign(order.begin(), order.end() - static_cast<std::ptrdiff_t>(n_eval));
    passes_ = Passes(train_.size(), seed);
    for (std::int64_t f = 0; f < d.features; ++f) {
      std::vector<double> v;
      for (std::size_t i : train_)
        for (std::size_t k = static_cast<std::size_t>(f); k < rows_[i].values.size(); k += static_cast<std::size_t>(d.features)) v.push_back(rows_[i].values[k]);
      norm_.push_back(moments(v));
    }
  }
  std::int64_t input_features() const override { return d_.features; }
  std::int64_t outputs() const override { return static_cast<std::int64_t>(classes_.size()); }
  Loss loss() const override { return Loss::Classes; }
  std::int64_t steps() const override { return T_; }
  std::string metric() const override { return "accuracy"; }
  Batch train_batch(Generator&) override {
    std::vector<std::size_t> rows;
    for (std::size_t i : passes_.next(d_.batch)) rows.push_back(train_[i]);
    return batch(rows);
  }
  std::int64_t train_examples() const override { return static_cast<std::int64_t>(train_.size()); }
  std::string position() const override { return passes_.position(); }
  void set_position(const std::string& p) override { passes_.set_position(p); }
  std::int64_t eval_batch_count() const override { return batches_of(eval_.size(), d_.batch); }
  Batch eval_batch(std::int64_t i) const override {
    const auto at = static_cast<std::size_t>(i * d_.batch) % eval_.size();
    const auto end = std::min(eval_.size(), at + static_cast<std::size_t>(d_.batch));
    return batch(std::vector<std::size_t>(eval_.begin() + static_cast<std::ptrdiff_t>(at), eval_.begin() + static_cast<std::ptrdiff_t>(end)));
  }
  std::string decode(const std::vector<std::int64_t>& ids) const override {
    std::string s;
    for (auto i : ids) s += (s.empty() ? "" : " ") + (i >= 0 && i < outputs() ? classes_[static_cast<std::size_t>(i)] : std::string("?"));
    return s;
  }

 private:
  struct Row {
    std::int64_t label;
    std::vector<double> values;  // steps * features, up to the sequence's end
  };
  static std::size_t value_column(std::size_t label, std::size_t k) { return k < label ? k : k + 1; }

  Batch batch(const std::vector<std::size_t>& rows) const {
    const auto B = static_cast<std::int64_t>(rows.size()), F = d_.features;
    std::int64_t T = 1;
    for (std::size_t r : rows) T = std::max(T, static_cast<std::int64_t>(rows_[r].values.size()) / F);
    Batch b{zeros({B, T, F}, kFloat64), zeros({B}, kInt64), zeros({B}, kInt64), {}};
    double* xp = b.x.data<double>();
    for (std::int64_t i = 0; i < B; ++i) {
      const Row& row = rows_[rows[static_cast<std::size_t>(i)]];
      for (std::size_t k = 0; k < row.values.size(); ++k) {
        const Moments& m = norm_[k % static_cast<std::size_t>(F)];
        xp[i * T * F + static_cast<std::int64_t>(k)] = (row.values[k] - m.mean) * m.scale;
      }
      b.y.data<std::int64_t>()[i] = row.label;
      b.lengths.data<std::int64_t>()[i] = static_cast<std::int64_t>(row.values.size()) / F;
    }
    b.x = b.x.to(dtype_);
    return b;
  }

  DataSpec d_;
  DType dtype_;
  std::int64_t T_ = 0;
  std::vector<std::string> classes_;
  std::map<std::string, std::int64_t> class_of_;
  std::vector<Row> rows_;
  std::vector<std::size_t> train_, eval_;
  std::vector<Moments> norm_;
  Passes passes_{1, 0};
};

class CsvForecast : public Task {
 public:
  CsvForecast(const DataSpec& d, DType dtype, std::uint64_t seed) : d_(d), dtype_(dtype), passes_(1, seed) {
    const CsvTable t = read_csv(d.file, "data.file");
    std::vector<std::size_t> inputs, targets;
    if (d.columns.empty()) {  // every column that holds numbers throughout
      for (std::size_t c = 0; c < t.header.size(); ++c) {
        bool numeric = true;
        for (std::size_t r = 0; r < t.rows.size() && numeric; ++r) numeric = t.is_number(r, c);
        if (numeric) inputs.push_back(c);
      }
      KILN_CHECK(!inputs.empty(), "data.columns: no column of {} holds numbers in every row; name the inputs", d.file);
    } else {
      for (const auto& name : d.columns) inputs.push_back(t.column(name, "data.columns"));
    }
    if (d.targets.empty()) targets = inputs;
    for (const auto& name : d.targets) targets.push_back(t.column(name, "data.targets"));
    std::vector<std::size_t> used = inputs;
    used.insert(used.end(), targets.begin(), targets.end());
    const std::size_t R = t.rows.size();
    const auto n_eval = static_cast<std::size_t>(std::llround(d.eval_fraction * static_cast<double>(R)));
    first_eval_ = R - n_eval;
    const auto window = static_cast<std::size_t>(d.length + d.horizon);
    KILN_CHECK(first_eval_ >= window + 1 && n_eval >= 1, "data.file: {} holds {} rows; length {} and horizon {} with "
               "eval_fraction {} need at least {} for training and one for evaluation", d.file, R, d.length, d.horizon,
               d.eval_fraction, window + 1);
    // Columns standardised with the training rows' moments.
    std::map<std::size_t, std::vector<double>> series;
    for (std::size_t c : used) {
      if (series.count(c) != 0) continue;
      std::vector<double> v(R);
      for (std::size_t r = 0; r < R; ++r) v[r] = t.number(r, c);
      const Moments m = moments(std::vector<double>(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(first_eval_)));
      for (double& x : v) x = (x - m.mean) * m.scale;
      series[c] = std::move(v);
    }
    for (std::size_t c : inputs) inputs_.push_back(series[c]);
    for (std::size_t c : targets) targets_.push_back(series[c]);
    passes_ = Passes(first_eval_ - lead(), seed);
  }
  std::int64_t input_features() const override { return static_cast<std::int64_t>(inputs_.size()); }
  std::int64_t outputs() const override { return static_cast<std::int64_t>(targets_.size()); }
  Loss loss() const override { return Loss::MeanSquared; }
  std::int64_t steps() const override { return d_.length; }
  std::string metric() const override { return "mse"; }
  // A window starting at s has its target at row s + length - 1 + horizon.
  Batch train_batch(Generator&) override { return batch(passes_.next(d_.batch)); }
  std::int64_t train_examples() const override { return static_cast<std::int64_t>(first_eval_ - lead()); }
  std::string position() const override { return passes_.position(); }
  void set_position(const std::string& p) override { passes_.set_position(p); }
  std::int64_t eval_batch_count() const override { return batches_of(eval_windows(), d_.batch); }
  Batch eval_batch(std::int64_t i) const override {
    const std::size_t first = first_eval_ - lead(), n = eval_windows();
    const auto at = static_cast<std::size_t>(i * d_.batch) % n;
    std::vector<std::size_t> starts;
    for (std::size_t k = at; k < std::min(n, at + static_cast<std::size_t>(d_.batch)); ++k) starts.push_back(first + k);
    return batch(starts);
  }

 private:
  std::size_t lead() const { return static_cast<std::size_t>(d_.length - 1 + d_.horizon); }
  std::size_t eval_windows() const { return inputs_[0].size() - first_eval_; }
  Batch batch(const std::vector<std::size_t>& starts) const {
    const auto B = static_cast<std::int64_t>(starts.size()), T = d_.length, F = input_features(), O = outputs();
    Batch b{zeros({B, T, F}, kFloat64), zeros({B, O}, kFloat64), {}, {}};
    double* xp = b.x.data<double>();
    double* yp = b.y.data<double>();
    for (std::int64_t i = 0; i < B; ++i) {
      const std::size_t s = starts[static_cast<std::size_t>(i)];
      for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t f = 0; f < F; ++f) xp[(i * T + t) * F + f] = inputs_[static_cast<std::size_t>(f)][s + static_cast<std::size_t>(t)];
      for (std::int64_t o = 0; o < O; ++o) yp[i * O + o] = targets_[static_cast<std::size_t>(o)][s + lead()];
    }
    return {b.x.to(dtype_), b.y.to(dtype_), {}, {}};
  }

  DataSpec d_;
  DType dtype_;
  std::size_t first_eval_ = 0;
  std::vector<std::vector<double>> inputs_, targets_;
  Passes passes_;
};

}  // namespace

std::unique_ptr<Task> make_csv_task(const DataSpec& data, DType dtype, std::uint64_t seed) {
  if (data.task == "csv_classification") return std::make_unique<CsvClassification>(data, dtype, seed);
  if (data.task == "csv_forecast") return std::make_unique<CsvForecast>(data, dtype, seed);
  return nullptr;
}

}  // namespace kiln::experiment

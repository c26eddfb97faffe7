// The generated tasks: adding, copy, sentiment, tagging (experiment/tasks.hpp).

#include "experiment/sentences.hpp"
#include "experiment/task_kit.hpp"

namespace kiln::experiment {
namespace {

class Adding : public Generated {
 public:
  Adding(const DataSpec& d, DType dtype, std::uint64_t seed) : Generated(seed), d_(d), dtype_(dtype) {}
  std::int64_t input_features() const override { return 2; }
  std::int64_t outputs() const override { return 1; }
  Loss loss() const override { return Loss::MeanSquared; }
  std::int64_t steps() const override { return d_.length; }
  std::string metric() const override { return "mse"; }
  Batch draw(Generator& g, bool) const override {
    const std::int64_t B = d_.batch, T = d_.length, half = T / 2;
    Tensor x = zeros({B, T, 2}, kFloat64), y = zeros({B, 1}, kFloat64);
    double* xp = x.data<double>();
    double* yp = y.data<double>();
    for (std::int64_t b = 0; b < B; ++b) {
      for (std::int64_t t = 0; t < T; ++t) xp[(b * T + t) * 2] = g.next_double();
      for (std::int64_t t : {pick(g, 0, half), pick(g, half, T)}) {
        xp[(b * T + t) * 2 + 1] = 1;
        yp[b] += xp[(b * T + t) * 2];
      }
    }
    return {x.to(dtype_), y.to(dtype_), {}, {}};
  }
 private:
  DataSpec d_;
  DType dtype_;
};

// Ids: 0 blank, 1..symbols the symbols, symbols + 1 the marker.
class Copy : public Generated {
 public:
  Copy(const DataSpec& d, std::uint64_t seed) : Generated(seed), d_(d) {}
  std::int64_t input_features() const override { return 0; }
  std::int64_t vocabulary() const override { return d_.symbols + 2; }
  std::int64_t outputs() const override { return d_.symbols + 1; }
  Loss loss() const override { return Loss::PerStepClasses; }
  std::int64_t steps() const override { return 2 * d_.copy_length + d_.length + 1; }
  std::string metric() const override { return "accuracy"; }
  Batch draw(Generator& g, bool) const override {
    const std::int64_t B = d_.batch, T = steps(), n = d_.copy_length;
    Tensor x = zeros({B, T}, kInt64), y = zeros({B, T}, kInt64);
    auto* xp = x.data<std::int64_t>();
    auto* yp = y.data<std::int64_t>();
    for (std::int64_t b = 0; b < B; ++b) {
      for (std::int64_t t = 0; t < n; ++t) {
        const std::int64_t s = pick(g, 1, d_.symbols + 1);
        xp[b * T + t] = s;
        yp[b * T + T - n + t] = s;
      }
      xp[b * T + n + d_.length] = d_.symbols + 1;  // the marker: now recall
    }
    return {x, y, {}, {}};
  }
 private:
  DataSpec d_;
};

// A review opens with an opinion word, runs on with filler and may end with "not really" (30%), which
// flips its label; padded at the end to `length`.
class Sentiment : public Generated {
 public:
  Sentiment(const DataSpec& d, DType dtype, std::uint64_t seed) : Generated(seed), d_(d), dtype_(dtype) {}
  static constexpr std::int64_t kWords = 28, kFirstFiller = 9;
  std::int64_t input_features() const override { return 0; }
  std::int64_t vocabulary() const override { return kWords; }
  std::int64_t outputs() const override { return 1; }
  Loss loss() const override { return Loss::Binary; }
  std::int64_t steps() const override { return d_.length; }
  std::string metric() const override { return "accuracy"; }
  Batch draw(Generator& g, bool) const override {
    const std::int64_t B = d_.batch, T = d_.length;
    Tensor x = zeros({B, T}, kInt64), y = zeros({B, 1}, kFloat64);
    auto* xp = x.data<std::int64_t>();
    double* yp = y.data<double>();
    for (std::int64_t b = 0; b < B; ++b) {
      const std::int64_t n = pick(g, T / 2, T + 1);
      const bool positive = g.next_double() < 0.5, negated = g.next_double() < 0.3;
      std::int64_t* row = xp + b * T;
      row[0] = positive ? pick(g, 1, 4) : pick(g, 4, 7);
      for (std::int64_t t = 1; t < n; ++t) row[t] = pick(g, kFirstFiller, kWords);
      if (negated) row[n - 2] = 7, row[n - 1] = 8;  // "not really"
      yp[b] = positive != negated ? 1 : 0;
    }
    return {x, y.to(dtype_), {}, {}};
  }
 private:
  DataSpec d_;
  DType dtype_;
};

// Sentences of experiment/sentences.hpp, padded to `length` words; tags past a sentence's end are
// kIgnoreLabel.
class Tagging : public Generated {
 public:
  Tagging(const DataSpec& d, std::uint64_t seed) : Generated(seed), d_(d) {}
  std::int64_t input_features() const override { return 0; }
  std::int64_t vocabulary() const override { return static_cast<std::int64_t>(kTagWords.size()); }
  std::int64_t outputs() const override { return static_cast<std::int64_t>(kTagNames.size()); }
  Loss loss() const override { return Loss::PerStepClasses; }
  std::int64_t steps() const override { return d_.length; }
  std::string metric() const override { return "accuracy"; }
  Batch draw(Generator& g, bool) const override {
    const std::int64_t B = d_.batch, T = d_.length;
    Batch b{zeros({B, T}, kInt64), full({B, T}, static_cast<double>(kIgnoreLabel), kInt64), zeros({B}, kInt64), {}};
    auto* xp = b.x.data<std::int64_t>();
    auto* yp = b.y.data<std::int64_t>();
    for (std::int64_t i = 0; i < B; ++i) {
      const auto words = tagged_sentence(g, T);
      b.lengths.data<std::int64_t>()[i] = static_cast<std::int64_t>(words.size());
      for (std::size_t t = 0; t < words.size(); ++t) xp[i * T + static_cast<std::int64_t>(t)] = words[t].word, yp[i * T + static_cast<std::int64_t>(t)] = words[t].tag;
    }
    return b;
  }
  std::string decode(const std::vector<std::int64_t>& ids) const override {
    std::string s;
    for (auto i : ids) s += (s.empty() ? "" : " ") + (i >= 0 && i < outputs() ? kTagNames[static_cast<std::size_t>(i)] : std::string("?"));
    return s;
  }
 private:
  DataSpec d_;
};

}  // namespace

std::unique_ptr<Task> make_generated_task(const DataSpec& data, DType dtype, std::uint64_t seed) {
  if (data.task == "adding") return std::make_unique<Adding>(data, dtype, seed);
  if (data.task == "copy") return std::make_unique<Copy>(data, seed);
  if (data.task == "sentiment") return std::make_unique<Sentiment>(data, dtype, seed);
  if (data.task == "tagging") return std::make_unique<Tagging>(data, seed);
  return nullptr;
}

}  // namespace kiln::experiment

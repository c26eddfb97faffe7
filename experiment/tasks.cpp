#include "experiment/tasks.hpp"

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "io/atomic_file.hpp"
#include "tensor/error.hpp"

namespace kiln::experiment {
namespace {

std::int64_t pick(Generator& g, std::int64_t lo, std::int64_t hi) {  // [lo, hi)
  return lo + static_cast<std::int64_t>(g.next_u64() % static_cast<std::uint64_t>(hi - lo));
}

// Evaluation batch i of a task seeded `seed`: a generator of its own, so training draws never move it.
Generator eval_generator(std::uint64_t seed, std::int64_t i) { return Generator(seed * 1000003u + 0x9e3779b9u + static_cast<std::uint64_t>(i)); }

// A generated task: evaluation batch i is drawn like a training batch, from a generator of its own.
class Generated : public Task {
 public:
  explicit Generated(std::uint64_t seed) : seed_(seed) {}
  Batch eval_batch(std::int64_t i) const override {
    Generator g = eval_generator(seed_, i);
    return train_batch(g);
  }
 private:
  std::uint64_t seed_;
};

class Adding : public Generated {
 public:
  Adding(const DataSpec& d, DType dtype, std::uint64_t seed) : Generated(seed), d_(d), dtype_(dtype) {}
  std::int64_t input_features() const override { return 2; }
  std::int64_t outputs() const override { return 1; }
  Loss loss() const override { return Loss::MeanSquared; }
  std::int64_t steps() const override { return d_.length; }
  std::string metric() const override { return "mse"; }
  Batch train_batch(Generator& g) const override {
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
    return {x.to(dtype_), y.to(dtype_)};
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
  Batch train_batch(Generator& g) const override {
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
    return {x, y};
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
  Batch train_batch(Generator& g) const override {
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
    return {x, y.to(dtype_)};
  }
 private:
  DataSpec d_;
  DType dtype_;
};

// Ids are the text's distinct bytes in order.
class CharModel : public Task {
 public:
  CharModel(const DataSpec& d, std::uint64_t seed) : d_(d), seed_(seed) {
    try {
      text_ = io::read_file(d.text, std::size_t{256} << 20);  // a character model reads at most 256 MiB
    } catch (const Error& e) {
      throw Error(fmt::format("data.text: {}", e.what()));
    }
    const std::int64_t need = 10 * (d.length + 1);
    KILN_CHECK(static_cast<std::int64_t>(text_.size()) >= need, "data.text: '{}' holds {} bytes; length {} needs at least {}",
               d.text, text_.size(), d.length, need);
    id_.fill(-1);
    for (unsigned char c : text_) id_[c] = 0;
    for (int c = 0; c < 256; ++c)
      if (id_[static_cast<std::size_t>(c)] == 0) {
        id_[static_cast<std::size_t>(c)] = static_cast<std::int64_t>(chars_.size());
        chars_.push_back(static_cast<char>(c));
      }
    split_ = static_cast<std::int64_t>(text_.size()) / 10 * 9;
  }
  std::int64_t input_features() const override { return 0; }
  std::int64_t vocabulary() const override { return static_cast<std::int64_t>(chars_.size()); }
  std::int64_t outputs() const override { return vocabulary(); }
  Loss loss() const override { return Loss::PerStepClasses; }
  std::int64_t steps() const override { return d_.length; }
  std::string metric() const override { return "bits_per_char"; }
  Batch train_batch(Generator& g) const override { return window(g, 0, split_ - d_.length - 1); }
  Batch eval_batch(std::int64_t i) const override {
    Generator g = eval_generator(seed_, i);
    return window(g, split_, static_cast<std::int64_t>(text_.size()) - d_.length - 1);
  }
  std::string decode(const std::vector<std::int64_t>& ids) const override {
    std::string s;
    for (auto i : ids) s += i >= 0 && i < vocabulary() ? chars_[static_cast<std::size_t>(i)] : '?';
    return s;
  }
  std::vector<std::int64_t> encode(const std::string& text) const override {
    std::vector<std::int64_t> ids;
    for (unsigned char c : text) ids.push_back(std::max<std::int64_t>(0, id_[c]));
    return ids;
  }
 private:
  Batch window(Generator& g, std::int64_t lo, std::int64_t hi) const {
    const std::int64_t B = d_.batch, T = d_.length;
    Tensor x = zeros({B, T}, kInt64), y = zeros({B, T}, kInt64);
    auto* xp = x.data<std::int64_t>();
    auto* yp = y.data<std::int64_t>();
    for (std::int64_t b = 0; b < B; ++b) {
      const std::int64_t at = pick(g, lo, std::max(lo + 1, hi));
      for (std::int64_t t = 0; t < T; ++t) {
        xp[b * T + t] = id_[static_cast<unsigned char>(text_[static_cast<std::size_t>(at + t)])];
        yp[b * T + t] = id_[static_cast<unsigned char>(text_[static_cast<std::size_t>(at + t + 1)])];
      }
    }
    return {x, y};
  }

  DataSpec d_;
  std::uint64_t seed_;
  std::string text_;
  std::string chars_;
  std::array<std::int64_t, 256> id_{};
  std::int64_t split_ = 0;
};

}  // namespace

std::string Task::decode(const std::vector<std::int64_t>&) const { return ""; }
std::vector<std::int64_t> Task::encode(const std::string&) const { return {}; }

std::unique_ptr<Task> make_task(const DataSpec& data, DType dtype, std::uint64_t seed) {
  if (data.task == "adding") return std::make_unique<Adding>(data, dtype, seed);
  if (data.task == "copy") return std::make_unique<Copy>(data, seed);
  if (data.task == "sentiment") return std::make_unique<Sentiment>(data, dtype, seed);
  if (data.task == "char_lm") return std::make_unique<CharModel>(data, seed);
  throw Error(fmt::format("data.task: unknown task '{}'", data.task));
}

}  // namespace kiln::experiment

// The language-model tasks (experiment/tasks.hpp): characters or words of a text file, each next one
// predicted; the text's last tenth is kept for evaluation. Training windows start anywhere; an epoch is
// as many windows as fit in the training text end to end.

#include <algorithm>
#include <array>
#include <cctype>
#include <map>

#include <fmt/format.h>

#include "experiment/task_kit.hpp"
#include "io/atomic_file.hpp"
#include "tensor/error.hpp"

namespace kiln::experiment {
namespace {

// The text files one after another; a language model reads at most 256 MiB.
std::string read_text(const DataSpec& d) {
  std::string text;
  const std::size_t limit = std::size_t{256} << 20;
  for (const std::string& file : d.text) {
    try {
      text += io::read_file(file, limit - text.size());
    } catch (const Error& e) {
      throw Error(fmt::format("data.text: {}", e.what()));
    }
  }
  return text;
}

// The files of data.text, for messages.
std::string named(const DataSpec& d) { return d.text.size() == 1 ? "'" + d.text[0] + "'" : fmt::format("the {} files", d.text.size()); }

// Windows of a token stream: x the tokens at [at, at + T), y those at [at + 1, at + T + 1).
Batch windows(Generator& g, const std::vector<std::int64_t>& ids, std::int64_t lo, std::int64_t hi, std::int64_t B, std::int64_t T) {
  Tensor x = zeros({B, T}, kInt64), y = zeros({B, T}, kInt64);
  auto* xp = x.data<std::int64_t>();
  auto* yp = y.data<std::int64_t>();
  for (std::int64_t b = 0; b < B; ++b) {
    const std::int64_t at = pick(g, lo, std::max(lo + 1, hi));
    for (std::int64_t t = 0; t < T; ++t) {
      xp[b * T + t] = ids[static_cast<std::size_t>(at + t)];
      yp[b * T + t] = ids[static_cast<std::size_t>(at + t + 1)];
    }
  }
  return {x, y, {}, {}};
}

// Ids are the text's distinct bytes in order.
class CharModel : public Task {
 public:
  CharModel(const DataSpec& d, std::uint64_t seed) : d_(d), seed_(seed) {
    text_ = read_text(d);
    const std::int64_t need = 10 * (d.length + 1);
    KILN_CHECK(static_cast<std::int64_t>(text_.size()) >= need, "data.text: {} hold(s) {} bytes; length {} needs at least {}",
               named(d), text_.size(), d.length, need);
    id_.fill(-1);
    for (unsigned char c : text_) id_[c] = 0;
    for (int c = 0; c < 256; ++c)
      if (id_[static_cast<std::size_t>(c)] == 0) {
        id_[static_cast<std::size_t>(c)] = static_cast<std::int64_t>(chars_.size());
        chars_.push_back(static_cast<char>(c));
      }
    split_ = static_cast<std::int64_t>(text_.size()) / 10 * 9;
    for (unsigned char c : text_) ids_.push_back(id_[c]);
  }
  std::int64_t input_features() const override { return 0; }
  std::int64_t vocabulary() const override { return static_cast<std::int64_t>(chars_.size()); }
  std::int64_t outputs() const override { return vocabulary(); }
  Loss loss() const override { return Loss::PerStepClasses; }
  std::int64_t steps() const override { return d_.length; }
  std::string metric() const override { return "bits_per_char"; }
  bool has_text() const override { return true; }
  Batch train_batch(Generator& g) override { return window(g, 0, split_ - d_.length - 1); }
  std::int64_t train_examples() const override { return split_ / d_.length; }
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
    return windows(g, ids_, lo, hi, d_.batch, d_.length);
  }

  DataSpec d_;
  std::uint64_t seed_;
  std::string text_;
  std::string chars_;
  std::array<std::int64_t, 256> id_{};
  std::int64_t split_ = 0;
  std::vector<std::int64_t> ids_;
};


// Words: runs of letters, digits and apostrophes (lower-cased), each other visible character, and line
// ends. Id 0 is <unk>, then the `vocab` - 1 most frequent tokens (ties in byte order).
class WordModel : public Task {
 public:
  WordModel(const DataSpec& d, std::uint64_t seed) : d_(d), seed_(seed) {
    const std::vector<std::string> tokens = split(read_text(d));
    std::map<std::string, std::int64_t> counts;
    for (const auto& w : tokens) ++counts[w];
    std::vector<std::pair<std::int64_t, std::string>> order;
    for (const auto& [w, n] : counts) order.emplace_back(-n, w);
    std::sort(order.begin(), order.end());
    words_.push_back("<unk>");
    for (const auto& [n, w] : order) {
      if (static_cast<std::int64_t>(words_.size()) >= d.vocab) break;
      id_[w] = static_cast<std::int64_t>(words_.size());
      words_.push_back(w);
    }
    for (const auto& w : tokens) ids_.push_back(lookup(w));
    const std::int64_t need = 10 * (d.length + 1);
    KILN_CHECK(static_cast<std::int64_t>(ids_.size()) >= need, "data.text: {} hold(s) {} words; length {} needs at least {}",
               named(d), ids_.size(), d.length, need);
    split_ = static_cast<std::int64_t>(ids_.size()) / 10 * 9;
  }
  std::int64_t input_features() const override { return 0; }
  std::int64_t vocabulary() const override { return static_cast<std::int64_t>(words_.size()); }
  std::int64_t outputs() const override { return vocabulary(); }
  Loss loss() const override { return Loss::PerStepClasses; }
  std::int64_t steps() const override { return d_.length; }
  std::string metric() const override { return "perplexity"; }
  bool has_text() const override { return true; }
  Batch train_batch(Generator& g) override { return windows(g, ids_, 0, split_ - d_.length - 1, d_.batch, d_.length); }
  std::int64_t train_examples() const override { return split_ / d_.length; }
  Batch eval_batch(std::int64_t i) const override {
    Generator g = eval_generator(seed_, i);
    return windows(g, ids_, split_, static_cast<std::int64_t>(ids_.size()) - d_.length - 1, d_.batch, d_.length);
  }
  // Words with a space before each (but at the start of a line), punctuation and line ends without.
  std::string decode(const std::vector<std::int64_t>& ids) const override {
    std::string s;
    for (auto i : ids) {
      const std::string& w = i >= 0 && i < vocabulary() ? words_[static_cast<std::size_t>(i)] : words_[0];
      const bool word = std::isalnum(static_cast<unsigned char>(w[0])) || w[0] == '\'' || w == "<unk>";
      s += (word && !s.empty() && s.back() != '\n' ? " " : "") + w;
    }
    return s;
  }
  std::int64_t unknown_id() const override { return 0; }
  bool words() const override { return true; }
  std::vector<std::int64_t> encode(const std::string& text) const override {
    std::vector<std::int64_t> ids;
    for (const auto& w : split(text)) ids.push_back(lookup(w));
    return ids;
  }

 private:
  static std::vector<std::string> split(const std::string& text) {
    std::vector<std::string> out;
    std::string word;
    for (unsigned char c : text) {
      if (std::isalnum(c) || c == '\'') {
        word += static_cast<char>(std::tolower(c));
        continue;
      }
      if (!word.empty()) out.push_back(word), word.clear();
      if (c == '\n' || (c > 32 && c < 127)) out.emplace_back(1, static_cast<char>(c));
    }
    if (!word.empty()) out.push_back(word);
    return out;
  }
  std::int64_t lookup(const std::string& w) const {
    const auto it = id_.find(w);
    return it == id_.end() ? 0 : it->second;
  }

  DataSpec d_;
  std::uint64_t seed_;
  std::vector<std::string> words_;
  std::map<std::string, std::int64_t> id_;
  std::vector<std::int64_t> ids_;
  std::int64_t split_ = 0;
};

}  // namespace

std::unique_ptr<Task> make_text_task(const DataSpec& data, std::uint64_t seed) {
  if (data.task == "char_lm") return std::make_unique<CharModel>(data, seed);
  if (data.task == "word_lm") return std::make_unique<WordModel>(data, seed);
  return nullptr;
}

}  // namespace kiln::experiment

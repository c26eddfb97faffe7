// The seq2seq tasks (experiment/tasks.hpp): digit strings copied or reversed, and date translation,
// human-written dates to ISO, character by character. Source ids: 0 pad, 1 BOS, 2 EOS, then printable ASCII; target ids: the same three, then
// the digits and '-'. Evaluation draws only held-out dates (experiment/dates.hpp).

#include <algorithm>

#include "experiment/dates.hpp"
#include "experiment/task_kit.hpp"

namespace kiln::experiment {
namespace {

const std::string kTargetChars = "0123456789-";

// A batch of (source, target) id sequences: x the sources padded with kPadId, their lengths, tgt_in
// BOS + target, y target + EOS padded with kIgnoreLabel.
Batch pairs(const std::vector<std::vector<std::int64_t>>& src, const std::vector<std::vector<std::int64_t>>& tgt) {
  const auto B = static_cast<std::int64_t>(src.size());
  std::size_t S = 1, T = 1;
  for (std::size_t i = 0; i < src.size(); ++i) S = std::max(S, src[i].size()), T = std::max(T, tgt[i].size() + 1);
  const auto s = static_cast<std::int64_t>(S), t = static_cast<std::int64_t>(T);
  Batch b{zeros({B, s}, kInt64), full({B, t}, static_cast<double>(kIgnoreLabel), kInt64), zeros({B}, kInt64), zeros({B, t}, kInt64)};
  for (std::int64_t i = 0; i < B; ++i) {
    const auto& from = src[static_cast<std::size_t>(i)];
    const auto& to = tgt[static_cast<std::size_t>(i)];
    std::copy(from.begin(), from.end(), b.x.data<std::int64_t>() + i * s);
    b.lengths.data<std::int64_t>()[i] = static_cast<std::int64_t>(from.size());
    std::int64_t* in = b.tgt_in.data<std::int64_t>() + i * t;
    std::int64_t* out = b.y.data<std::int64_t>() + i * t;
    in[0] = kBosId;
    for (std::size_t k = 0; k < to.size(); ++k) {
      out[k] = to[k];
      in[k + 1] = to[k];
    }
    out[to.size()] = kEosId;
  }
  return b;
}

// Digit strings of `min_length` to `max_length` digits, copied or reversed (the context-vector
// bottleneck of examples/bottleneck.cpp): ids 0-2 as everywhere, then the digits.
class Digits : public Generated {
 public:
  Digits(const DataSpec& d, std::uint64_t seed) : Generated(seed), d_(d) {}
  std::int64_t input_features() const override { return 0; }
  std::int64_t vocabulary() const override { return 13; }
  std::int64_t outputs() const override { return 13; }
  Loss loss() const override { return Loss::PerStepClasses; }
  std::int64_t steps() const override { return d_.length; }
  std::string metric() const override { return "exact_match"; }
  bool seq2seq() const override { return true; }
  bool has_text() const override { return true; }
  std::int64_t max_target_length() const override { return d_.length + 1; }
  Batch draw(Generator& g, bool) const override {
    std::vector<std::vector<std::int64_t>> src, tgt;
    for (std::int64_t i = 0; i < d_.batch; ++i) {
      const std::int64_t n = pick(g, d_.min_length, d_.length + 1);
      src.emplace_back();
      for (std::int64_t t = 0; t < n; ++t) src.back().push_back(3 + pick(g, 0, 10));
      tgt.push_back(d_.reverse ? std::vector<std::int64_t>(src.back().rbegin(), src.back().rend()) : src.back());
    }
    return pairs(src, tgt);
  }
  std::vector<std::int64_t> encode(const std::string& text) const override {
    std::vector<std::int64_t> ids;
    for (char c : text)
      if (c >= '0' && c <= '9') ids.push_back(3 + (c - '0'));
    return ids;
  }
  std::string decode(const std::vector<std::int64_t>& ids) const override {
    std::string s;
    for (auto id : ids) {
      if (id == kEosId) break;
      s += id >= 3 && id < 13 ? static_cast<char>('0' + id - 3) : '?';
    }
    return s;
  }
  std::string decode_input(const std::vector<std::int64_t>& ids) const override { return decode(ids); }

 private:
  DataSpec d_;
};

class DateTranslation : public Generated {
 public:
  DateTranslation(const DataSpec& d, std::uint64_t seed) : Generated(seed), d_(d) {}
  std::int64_t input_features() const override { return 0; }
  std::int64_t vocabulary() const override { return 3 + 95; }
  std::int64_t outputs() const override { return 3 + static_cast<std::int64_t>(kTargetChars.size()); }
  Loss loss() const override { return Loss::PerStepClasses; }
  std::int64_t steps() const override { return 32; }  // the longest rendering ("Wednesday, September 30, 2020")
  std::string metric() const override { return "exact_match"; }
  bool seq2seq() const override { return true; }
  bool has_text() const override { return true; }
  std::int64_t max_target_length() const override { return 12; }

  Batch draw(Generator& g, bool eval) const override {
    std::vector<std::string> text, answer;
    for (std::int64_t i = 0; i < d_.batch; ++i) {
      const Date t = random_date(g, eval);
      text.push_back(render(t, g));
      answer.push_back(iso(t));
    }
    std::vector<std::vector<std::int64_t>> src, tgt;
    for (std::size_t i = 0; i < text.size(); ++i) {
      src.push_back(encode(text[i]));
      tgt.emplace_back();
      for (char c : answer[i]) tgt.back().push_back(3 + static_cast<std::int64_t>(kTargetChars.find(c)));
    }
    return pairs(src, tgt);
  }
  std::vector<std::int64_t> encode(const std::string& text) const override {
    std::vector<std::int64_t> ids;
    for (unsigned char c : text) ids.push_back(3 + (c >= 32 && c < 127 ? c - 32 : '?' - 32));
    return ids;
  }
  std::string decode_input(const std::vector<std::int64_t>& ids) const override {
    std::string s;
    for (auto id : ids) s += id >= 3 && id < vocabulary() ? static_cast<char>(id - 3 + 32) : '?';
    return s;
  }
  std::string decode(const std::vector<std::int64_t>& ids) const override {
    std::string s;
    for (auto id : ids) {
      if (id == kEosId) break;
      s += id >= 3 && id < outputs() ? kTargetChars[static_cast<std::size_t>(id - 3)] : '?';
    }
    return s;
  }

 private:
  DataSpec d_;
};

}  // namespace

std::unique_ptr<Task> make_translation_task(const DataSpec& data, std::uint64_t seed) {
  if (data.task == "date_translation") return std::make_unique<DateTranslation>(data, seed);
  if (data.task == "digits") return std::make_unique<Digits>(data, seed);
  return nullptr;
}

}  // namespace kiln::experiment

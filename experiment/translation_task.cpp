// The seq2seq tasks (experiment/tasks.hpp): date translation, human-written dates to ISO, character by
// character. Source ids: 0 pad, 1 BOS, 2 EOS, then printable ASCII; target ids: the same three, then
// the digits and '-'. Evaluation draws only held-out dates (experiment/dates.hpp).

#include <algorithm>

#include "experiment/dates.hpp"
#include "experiment/task_kit.hpp"

namespace kiln::experiment {
namespace {

const std::string kTargetChars = "0123456789-";

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
    return batch(text, answer);
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
  Batch batch(const std::vector<std::string>& text, const std::vector<std::string>& answer) const {
    const auto B = static_cast<std::int64_t>(text.size());
    std::size_t S = 1, T = 1;
    for (std::size_t i = 0; i < text.size(); ++i) S = std::max(S, text[i].size()), T = std::max(T, answer[i].size() + 1);
    const auto s = static_cast<std::int64_t>(S), t = static_cast<std::int64_t>(T);
    Batch b{zeros({B, s}, kInt64), full({B, t}, static_cast<double>(kIgnoreLabel), kInt64), zeros({B}, kInt64), zeros({B, t}, kInt64)};
    for (std::int64_t i = 0; i < B; ++i) {
      const auto src = encode(text[static_cast<std::size_t>(i)]);
      std::copy(src.begin(), src.end(), b.x.data<std::int64_t>() + i * s);
      b.lengths.data<std::int64_t>()[i] = static_cast<std::int64_t>(src.size());
      std::int64_t* in = b.tgt_in.data<std::int64_t>() + i * t;
      std::int64_t* out = b.y.data<std::int64_t>() + i * t;
      in[0] = kBosId;
      std::int64_t k = 0;
      for (char c : answer[static_cast<std::size_t>(i)]) {
        out[k] = 3 + static_cast<std::int64_t>(kTargetChars.find(c));
        if (k + 1 < t) in[k + 1] = out[k];
        ++k;
      }
      out[k] = kEosId;
    }
    return b;
  }

  DataSpec d_;
};

}  // namespace

std::unique_ptr<Task> make_translation_task(const DataSpec& data, std::uint64_t seed) {
  if (data.task == "date_translation") return std::make_unique<DateTranslation>(data, seed);
  return nullptr;
}

}  // namespace kiln::experiment

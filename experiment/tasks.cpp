#include "experiment/tasks.hpp"

#include <fmt/format.h>

#include "experiment/task_kit.hpp"
#include "tensor/error.hpp"

namespace kiln::experiment {

std::string Task::decode(const std::vector<std::int64_t>&) const { return ""; }
std::vector<std::int64_t> Task::encode(const std::string&) const { return {}; }
std::vector<std::size_t> Passes::next(std::int64_t batch) {
  std::vector<std::size_t> out;
  for (std::int64_t b = 0; b < batch; ++b, ++given_) {
    const std::int64_t pass = given_ / static_cast<std::int64_t>(n_);
    if (pass != pass_) {  // a new order: Fisher-Yates from the seed and the pass
      order_.resize(n_);
      for (std::size_t i = 0; i < n_; ++i) order_[i] = i;
      Generator g(seed_ ^ (0x9e3779b97f4a7c15ull * static_cast<std::uint64_t>(pass + 1)));
      for (std::size_t i = n_; i > 1; --i) std::swap(order_[i - 1], order_[g.next_u64() % i]);
      pass_ = pass;
    }
    out.push_back(order_[static_cast<std::size_t>(given_ % static_cast<std::int64_t>(n_))]);
  }
  return out;
}

void Passes::set_position(const std::string& position) {
  std::int64_t given = -1;
  try {
    std::size_t used = 0;
    given = std::stoll(position, &used);
    if (used != position.size()) given = -1;
  } catch (const std::exception&) {
  }
  KILN_CHECK(given >= 0, "data position '{}' is not a count of examples", position.substr(0, 40));
  given_ = given;
  pass_ = -1;
}

void Task::set_position(const std::string& position) {
  KILN_CHECK(position.empty(), "a data position '{}' for a task whose batches depend on the generator alone", position.substr(0, 40));
}

std::string Task::decode_input(const std::vector<std::int64_t>&) const { return ""; }

std::unique_ptr<Task> make_task(const DataSpec& data, DType dtype, std::uint64_t seed) {
  if (auto t = make_generated_task(data, dtype, seed)) return t;
  if (auto t = make_translation_task(data, seed)) return t;
  if (auto t = make_text_task(data, seed)) return t;
  if (auto t = make_csv_task(data, dtype, seed)) return t;
  throw Error(fmt::format("data.task: unknown task '{}'", data.task));
}

}  // namespace kiln::experiment

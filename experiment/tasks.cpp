#include "experiment/tasks.hpp"

#include <fmt/format.h>

#include "experiment/task_kit.hpp"
#include "tensor/error.hpp"

namespace kiln::experiment {

std::string Task::decode(const std::vector<std::int64_t>&) const { return ""; }
std::vector<std::int64_t> Task::encode(const std::string&) const { return {}; }
std::string Task::decode_input(const std::vector<std::int64_t>&) const { return ""; }

std::unique_ptr<Task> make_task(const DataSpec& data, DType dtype, std::uint64_t seed) {
  if (auto t = make_generated_task(data, dtype, seed)) return t;
  if (auto t = make_translation_task(data, seed)) return t;
  if (auto t = make_text_task(data, seed)) return t;
  if (auto t = make_csv_task(data, dtype, seed)) return t;
  throw Error(fmt::format("data.task: unknown task '{}'", data.task));
}

}  // namespace kiln::experiment

#pragma once
// What the task files share (experiment/tasks.hpp is the interface): drawing, evaluation generators,
// and each file's factory.

#include <memory>
#include <string>
#include <vector>

#include "experiment/tasks.hpp"

namespace kiln::experiment {

/// A number in [lo, hi).
inline std::int64_t pick(Generator& g, std::int64_t lo, std::int64_t hi) {
  return lo + static_cast<std::int64_t>(g.next_u64() % static_cast<std::uint64_t>(hi - lo));
}

/// Evaluation batch i of a task seeded `seed`: a generator of its own, so training draws never move it.
inline Generator eval_generator(std::uint64_t seed, std::int64_t i) {
  return Generator(seed * 1000003u + 0x9e3779b9u + static_cast<std::uint64_t>(i));
}

/// A generated task: evaluation batch i is drawn like a training batch, from a generator of its own.
class Generated : public Task {
 public:
  explicit Generated(std::uint64_t seed) : seed_(seed) {}
  Batch eval_batch(std::int64_t i) const override {
    Generator g = eval_generator(seed_, i);
    return draw(g, true);
  }
  Batch train_batch(Generator& g) override { return draw(g, false); }
  /// A batch; `eval` for the evaluation set (tasks with held-out examples draw from those).
  virtual Batch draw(Generator& g, bool eval) const = 0;

 private:
  std::uint64_t seed_;
};

/// Shuffled passes over a file's n training examples, batch after batch; each pass has its own order,
/// drawn from the seed and the pass's number, so the examples given so far are all a checkpoint keeps
/// (Task::position). A batch that crosses the end of a pass goes on into the next.
class Passes {
 public:
  Passes(std::size_t n, std::uint64_t seed) : n_(n), seed_(seed) {}
  std::vector<std::size_t> next(std::int64_t batch);
  std::string position() const { return std::to_string(given_); }
  void set_position(const std::string& position);

 private:
  std::size_t n_;
  std::uint64_t seed_;
  std::int64_t given_ = 0, pass_ = -1;
  std::vector<std::size_t> order_;
};

// The factories of each file; null when `data.task` is not one of the file's.
std::unique_ptr<Task> make_generated_task(const DataSpec& data, DType dtype, std::uint64_t seed);
std::unique_ptr<Task> make_translation_task(const DataSpec& data, std::uint64_t seed);
std::unique_ptr<Task> make_text_task(const DataSpec& data, std::uint64_t seed);
std::unique_ptr<Task> make_csv_task(const DataSpec& data, DType dtype, std::uint64_t seed);

}  // namespace kiln::experiment

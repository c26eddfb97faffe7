#pragma once
// A run's metrics: metrics.csv and metrics.jsonl in the run folder, one row per logged training step and
// per evaluation, appended as they come (flushed, so a killed run keeps what it logged).

#include <cstdint>
#include <fstream>
#include <string>

namespace kiln::experiment {

struct MetricsRow {
  std::int64_t step = 0;
  std::string split;  ///< "train" or "eval"
  double loss = 0;
  std::string metric;  ///< its name ("" for training rows)
  double value = 0;
  double lr = 0;
  double steps_per_second = 0;
};

/// Keeps the lines of a JSON-lines log whose "step" is at most `keep_through` (a resume drops the rest,
/// and a half-written last line); a missing file becomes an empty one. Written atomically.
void trim_jsonl(const std::string& path, std::int64_t keep_through);

class MetricsLog {
 public:
  /// Opens the logs of `run_dir`. With `keep_through` >= 0 (a resume), rows after that step are dropped
  /// first (they are computed again) and a half-written last line is discarded; otherwise they start empty.
  MetricsLog(const std::string& run_dir, std::int64_t keep_through);
  void add(const MetricsRow& row);

 private:
  std::ofstream csv_, jsonl_;
};

}  // namespace kiln::experiment

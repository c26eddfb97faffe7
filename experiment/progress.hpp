#pragma once
// Progress of a run on stderr: a bar redrawn in place on a terminal,
//   step 1200/2000 [==============>          ] 60%  loss 0.0213  41.3 steps/s  ETA 0:19
// and plain periodic lines when stderr is a file or a pipe (CI, nohup), so logs stay readable.

#include <chrono>
#include <cstdint>
#include <string>

namespace kiln::experiment {

class Progress {
 public:
  /// `first` is the step the run starts after (non-zero on resume); `quiet` prints nothing.
  Progress(std::int64_t first, std::int64_t total, bool quiet);
  /// After each step: redraws the bar (at most 10 times a second), or prints a line every `every` steps.
  void step(std::int64_t step, double loss, std::int64_t every);
  /// A line of its own (evaluations, checkpoints), above the bar.
  void line(const std::string& text);
  /// Steps per second since the start (of this process).
  double rate(std::int64_t step) const;
  /// Ends the bar's line.
  void finish();

 private:
  std::int64_t first_, total_;
  bool quiet_, tty_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace kiln::experiment

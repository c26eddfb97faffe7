#include "experiment/progress.hpp"

#include <algorithm>
#include <cstdio>

#include <unistd.h>

#include <fmt/format.h>

namespace kiln::experiment {

Progress::Progress(std::int64_t first, std::int64_t total, bool quiet)
    : first_(first), total_(total), quiet_(quiet), tty_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

double Progress::rate(std::int64_t step) const {
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return s > 0 ? static_cast<double>(step - first_) / s : 0;
}

void Progress::step(std::int64_t step, double loss, std::int64_t every) {
  if (quiet_) return;
  const double r = rate(step);
  const double eta = r > 0 ? static_cast<double>(total_ - step) / r : 0;
  const auto eta_s = static_cast<std::int64_t>(eta);
  const std::string tail = fmt::format("loss {:.4g}  {:.1f} steps/s  ETA {}:{:02}", loss, r, eta_s / 60, eta_s % 60);
  if (!tty_) {
    if (step % every == 0 || step == total_) std::fprintf(stderr, "step %lld/%lld  %s\n", static_cast<long long>(step),
                                                          static_cast<long long>(total_), tail.c_str());
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  if (step != total_ && drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  constexpr int kWidth = 28;
  const double done = static_cast<double>(step) / static_cast<double>(total_);
  const int filled = static_cast<int>(done * kWidth);
  const std::string bar = std::string(static_cast<std::size_t>(filled), '=') + (filled < kWidth ? ">" : "") +
                          std::string(static_cast<std::size_t>(std::max(0, kWidth - filled - 1)), ' ');
  std::fprintf(stderr, "\r\033[Kstep %lld/%lld [%s] %3d%%  %s", static_cast<long long>(step), static_cast<long long>(total_),
               bar.c_str(), static_cast<int>(done * 100), tail.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::line(const std::string& text) {
  if (quiet_) return;
  std::fprintf(stderr, "%s%s\n", tty_ && drawn_ ? "\r\033[K" : "", text.c_str());
  drawn_ = false;
}

void Progress::finish() {
  if (!quiet_ && tty_ && drawn_) std::fprintf(stderr, "\n");
  drawn_ = false;
}

}  // namespace kiln::experiment

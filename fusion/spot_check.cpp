#include "fusion/spot_check.hpp"

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <tuple>
#include <typeinfo>

#include <fmt/format.h>

#include "fusion/check_plugin.hpp"
#include "tensor/warning.hpp"

namespace kiln::plugins {
namespace {

std::atomic<bool> g_enabled{true};

std::int64_t size_class(std::int64_t n) {
  std::int64_t c = 1;
  while (c < n && c < (std::int64_t{1} << 62)) c *= 2;
  return c;
}

using Key = std::tuple<const Kernel*, std::string, DType, std::int64_t, std::int64_t, std::int64_t, std::int64_t, bool>;

struct Verdicts {
  std::mutex mutex;
  std::map<Key, std::string> by_key;  // "" agreed, else why not
};

Verdicts& verdicts() {
  static auto* v = new Verdicts;  // never destroyed: layers may run during static destruction
  return *v;
}

}  // namespace

bool far_outside_checked_sizes(std::int64_t steps, std::int64_t batch, std::int64_t input, std::int64_t hidden) {
  const CheckedSizes& c = kCheckedSizes;
  return steps > 4 * c.steps || batch > 4 * c.batch || input > 4 * c.input || hidden > 4 * c.hidden;
}

void set_spot_checks(bool enabled) { g_enabled = enabled; }
bool spot_checks() { return g_enabled; }

std::string spot_check(const Kernel& kernel, nn::RecurrentCell& cell, const ParamMap* params, DType dtype, std::int64_t steps,
                       std::int64_t batch, bool both_directions, const std::string& layer) {
  const std::int64_t input = cell.input_size(), hidden = cell.hidden_size();
  if (!far_outside_checked_sizes(steps, batch, input, hidden)) return "";
  // Every forward of such a layer asks: the verdict is looked up before any message is made.
  const Key key{&kernel, typeid(cell).name(), dtype, size_class(steps), size_class(batch), input, hidden, both_directions};
  if (spot_checks()) {
    std::lock_guard<std::mutex> lock(verdicts().mutex);
    const auto it = verdicts().by_key.find(key);
    if (it != verdicts().by_key.end()) return it->second;
  }
  const std::string sizes = fmt::format("T={} B={} I={} H={}", steps, batch, input, hidden);
  const CheckedSizes& c = kCheckedSizes;
  const std::string beyond = fmt::format("far beyond the sizes check-plugin proves it at (T {}, B {}, I {}, H {})", c.steps,
                                         c.batch, c.input, c.hidden);
  if (!spot_checks()) {
    note_once(fmt::format("{}: kernel '{}' runs {} {} without a spot check (spot checks are off)", layer, kernel.name, sizes,
                          beyond));
    return "";
  }
  ConfirmShape shape;
  shape.steps = steps, shape.batch = batch, shape.lengths = false;
  shape.directions = both_directions ? std::vector<bool>{false, true} : std::vector<bool>{false};
  const auto start = std::chrono::steady_clock::now();
  const CheckReport report = confirm_kernel(kernel, cell, params, CheckOptions{}, shape);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::string verdict;
  if (report.passed()) {
    double worst = 0;
    for (const auto& t : report.tensors) worst = std::max(worst, t.worst);
    note_once(fmt::format("{}: kernel '{}' spot-checked against the generic graph at {}, {}: agrees (worst relative error "
                          "{:.1e}, {:.2f} s, once for this size class)", layer, kernel.name, sizes, beyond, worst, seconds));
  } else {
    verdict = fmt::format("kernel '{}' failed its spot check against the generic graph at {}, {}: {}", kernel.name, sizes,
                          beyond, report.first_failure());
  }
  std::lock_guard<std::mutex> lock(verdicts().mutex);
  verdicts().by_key[key] = verdict;
  return verdict;
}

}  // namespace kiln::plugins

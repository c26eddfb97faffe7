#include "experiment/metrics_log.hpp"

#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "io/atomic_file.hpp"
#include "tensor/error.hpp"

namespace kiln::experiment {
namespace {

constexpr const char* kHeader = "step,split,loss,metric,value,lr,steps_per_second";

// The lines of `text` whose step (read by `step_of`, -1 for a malformed line) is at most `through`.
template <class StepOf>
std::string kept(const std::string& path, std::int64_t through, StepOf step_of, bool header) {
  std::string text;
  try {
    text = io::read_file(path);
  } catch (const Error&) {
    return header ? std::string(kHeader) + "\n" : "";
  }
  std::istringstream in(text);
  std::string out = header ? std::string(kHeader) + "\n" : "", line;
  for (bool first = true; std::getline(in, line); first = false) {
    if (header && first) continue;
    if (in.eof() && !text.empty() && text.back() != '\n') break;  // half-written by a killed run
    const std::int64_t step = step_of(line);
    if (step >= 0 && step <= through) out += line + "\n";
  }
  return out;
}

std::int64_t jsonl_step(const std::string& l) {
  const auto j = nlohmann::json::parse(l, nullptr, false);
  return j.is_object() && j.contains("step") && j["step"].is_number_integer() ? j["step"].get<std::int64_t>() : std::int64_t{-1};
}

}  // namespace

void trim_jsonl(const std::string& path, std::int64_t keep_through) {
  io::write_file_atomic(path, kept(path, keep_through, jsonl_step, false));
}

MetricsLog::MetricsLog(const std::string& run_dir, std::int64_t keep_through) {
  const std::string csv = run_dir + "/metrics.csv", jsonl = run_dir + "/metrics.jsonl";
  std::string csv_text = std::string(kHeader) + "\n", jsonl_text;
  if (keep_through >= 0) {
    csv_text = kept(csv, keep_through, [](const std::string& l) {
      try {
        return static_cast<std::int64_t>(std::stoll(l.substr(0, l.find(','))));
      } catch (const std::exception&) {
        return std::int64_t{-1};
      }
    }, true);
    jsonl_text = kept(jsonl, keep_through, jsonl_step, false);
  }
  io::write_file_atomic(csv, csv_text);
  io::write_file_atomic(jsonl, jsonl_text);
  csv_.open(csv, std::ios::app);
  jsonl_.open(jsonl, std::ios::app);
  KILN_CHECK(csv_.good() && jsonl_.good(), "{}: cannot append to metrics.csv and metrics.jsonl", run_dir);
}

void MetricsLog::add(const MetricsRow& r) {
  csv_ << fmt::format("{},{},{:.9g},{},{:.9g},{:.9g},{:.4g}\n", r.step, r.split, r.loss, r.metric, r.value, r.lr,
                      r.steps_per_second) << std::flush;
  nlohmann::json j{{"step", r.step}, {"split", r.split}, {"loss", r.loss}, {"lr", r.lr}};
  if (!r.metric.empty()) j[r.metric] = r.value;
  if (r.steps_per_second > 0) j["steps_per_second"] = r.steps_per_second;
  jsonl_ << j.dump() << "\n" << std::flush;
}

}  // namespace kiln::experiment

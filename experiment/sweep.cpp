#include "experiment/sweep.hpp"


#include <cctype>
#include <filesystem>
#include <functional>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "experiment/config_reader.hpp"
#include "experiment/experiment.hpp"
#include "io/atomic_file.hpp"
#include "tensor/error.hpp"

namespace kiln::experiment {
namespace fs = std::filesystem;
namespace {

// "model[0].recurrent.cell" -> "cell".
std::string short_key(const std::string& key) {
  std::string k = key.substr(key.rfind('.') == std::string::npos ? 0 : key.rfind('.') + 1);
  return k.substr(0, k.find('['));
}

// A value as part of a folder name: letters, digits, '.', '-' and '_' kept, anything else '_'.
std::string folder_part(const std::string& s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' ? c : '_';
  return out.empty() ? "_" : out;
}

// The grid's product, each combination in the grid's key order, the last key varying fastest.
std::vector<std::vector<std::pair<std::string, std::string>>> product(const std::vector<std::pair<std::string, std::vector<std::string>>>& grid) {
  std::vector<std::vector<std::pair<std::string, std::string>>> out{{}};
  for (const auto& [key, values] : grid) {
    std::vector<std::vector<std::pair<std::string, std::string>>> next;
    for (const auto& partial : out)
      for (const auto& v : values) {
        next.push_back(partial);
        next.back().emplace_back(key, v);
      }
    out = std::move(next);
  }
  return out;
}

}  // namespace

SweepPlan read_sweep(const std::string& path, const std::vector<std::string>& overrides) {
  ConfigFile file = ConfigFile::load(path, overrides);
  SweepPlan plan;
  plan.file = path;
  Section root = file.root();
  plan.output = root.text("output", "runs/sweeps/" + fs::path(path).stem().string());
  plan.parallel = static_cast<int>(root.integer("parallel", 1, 1, 256));
  plan.replicate = root.text("replicate", std::string("seed"));
  plan.alpha = root.number("alpha", 0.05, 1e-9, 0.5);
  const fs::path here = fs::path(path).parent_path();
  Section experiments = root.section("experiments");
  for (const std::string& name : experiments.keys()) {
    const std::string given = experiments.text(name, std::nullopt);
    const fs::path p = fs::path(given).is_absolute() ? fs::path(given) : here / given;
    if (!given.empty() && !fs::exists(p)) experiments.error(name, fmt::format("no experiment file '{}' (read as {})", given, p.string()));
    if (folder_part(name) != name) experiments.error(name, "a name may hold only letters, digits, '.', '-' and '_' (it names a folder)");
    plan.experiments.emplace_back(name, p.lexically_normal().string());
  }
  if (plan.experiments.empty()) root.error("experiments", "give at least one experiment: `experiments: {name: file.yaml}`");
  Section grid = root.section("grid");
  for (const std::string& key : grid.keys()) {
    std::vector<std::string> values = grid.texts(key);
    if (values.empty()) grid.error(key, "give at least one value");
    for (std::size_t i = 0; i < values.size(); ++i)
      for (std::size_t j = 0; j < i; ++j)
        if (values[i] == values[j]) grid.error(key, fmt::format("'{}' is given twice", values[i]));
    if (key == "output") grid.error(key, "the sweep chooses each run's output folder");
    plan.grid.emplace_back(key, values);
  }
  // set: {train.steps: 600} or nested, {train: {steps: 600}}: flattened to dotted keys.
  std::function<void(Section&, const std::string&)> flatten = [&](Section& s, const std::string& prefix) {
    for (const std::string& key : s.keys()) {
      const std::string full = prefix.empty() ? key : prefix + "." + key;
      if (s.is_map(key)) {
        Section inner = s.section(key);
        flatten(inner, full);
        inner.finish();
        continue;
      }
      if (full == "output") s.error(key, "the sweep chooses each run's output folder");
      plan.set.emplace_back(full, s.text(key, std::nullopt));
    }
  };
  Section set = root.section("set");
  flatten(set, "");
  // The variant key: every grid key but the replicate one; the baseline is a variant's label.
  std::map<std::string, int> shorts;
  for (const auto& [key, values] : plan.grid) ++shorts[short_key(key)];
  auto label = [&](const std::string& key) { return shorts[short_key(key)] > 1 ? key : short_key(key); };
  for (const auto& [name, exp] : plan.experiments)
    for (const auto& combo : product(plan.grid)) {
      SweepRun r;
      r.experiment = name;
      r.file = exp;
      r.values = combo;
      std::string folder, variant;
      for (const auto& [key, value] : combo) {
        folder += (folder.empty() ? "" : "_") + folder_part(label(key)) + "-" + folder_part(value);
        if (key == plan.replicate)
          r.replicate = value;
        else
          variant += (variant.empty() ? "" : ", ") + label(key) + "=" + value;
      }
      r.variant = variant.empty() ? "all" : variant;
      r.dir = (fs::path(plan.output) / name / (folder.empty() ? "run" : folder)).string();
      for (const auto& [key, value] : plan.set) r.overrides.push_back(key + "=" + value);
      for (const auto& [key, value] : combo) r.overrides.push_back(key + "=" + value);
      r.overrides.push_back("output=" + r.dir);
      plan.runs.push_back(std::move(r));
    }
  // The baseline: a value of one grid key (the first key whose values hold it), or a variant's label.
  for (const auto& [key, values] : plan.grid)
    if (key != plan.replicate && plan.baseline_key.empty()) plan.baseline_key = key, plan.baseline = values.front();
  if (root.has("baseline")) {
    const std::string b = root.text("baseline", std::nullopt);
    std::string key;
    for (const auto& [k, values] : plan.grid)
      if (key.empty() && k != plan.replicate && std::find(values.begin(), values.end(), b) != values.end()) key = k;
    if (key.empty()) {
      std::vector<std::string> keys;
      for (const auto& [k, values] : plan.grid)
        if (k != plan.replicate) keys.push_back(k);
      root.error("baseline", fmt::format("'{}' is no value of the grid's keys ({})", b, fmt::join(keys, ", ")));
    }
    plan.baseline_key = key, plan.baseline = b;
  }
  for (SweepRun& r : plan.runs) {
    std::string reference;
    for (const auto& [key, value] : r.values)
      if (key != plan.replicate)
        reference += (reference.empty() ? "" : ", ") + label(key) + "=" + (key == plan.baseline_key ? plan.baseline : value);
    r.reference = reference.empty() ? "all" : reference;
  }
  root.finish();
  file.throw_if_errors("sweep");
  // Every run's experiment is read now, so a bad key or value stops the sweep before anything runs.
  std::string problems;
  for (const SweepRun& r : plan.runs) {
    try {
      read_experiment(r.file, r.overrides);
    } catch (const Error& e) {
      problems += fmt::format("\n  run {} ({}): {}", r.dir, r.variant, e.what());
      break;  // the grid's other runs share the problem as a rule
    }
  }
  KILN_CHECK(problems.empty(), "{}: a run of the sweep would not start:{}", path, problems);
  return plan;
}

RunOutcome read_outcome(const SweepRun& run) {
  RunOutcome o;
  const std::string path = run.dir + "/result.json";
  if (!fs::exists(path)) {
    o.error = "no result.json";
    return o;
  }
  const auto j = nlohmann::json::parse(io::read_file(path, std::size_t{1} << 20), nullptr, false);
  if (!j.is_object()) {
    o.error = path + " is not a JSON object";
    return o;
  }
  try {
    o.eval_loss = j.at("eval_loss").get<double>();
    o.eval_metric = j.at("eval_metric").get<double>();
    o.ms_per_step = j.at("ms_per_step").get<double>();
    o.metric = j.at("metric").get<std::string>();
    o.steps = j.at("steps").get<std::int64_t>();
    std::vector<std::string> paths;
    if (j.contains("layers"))
      for (const auto& l : j["layers"]) paths.push_back(l.at("path").get<std::string>());
    o.path = paths.empty() ? "-" : fmt::format("{}", fmt::join(paths, "; "));
  } catch (const nlohmann::json::exception& e) {
    o.error = fmt::format("{}: {}", path, e.what());
    return o;
  }
  o.state = RunOutcome::State::Finished;
  return o;
}

}  // namespace kiln::experiment

#include "experiment/sweep.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "dist/dist.hpp"
#include "experiment/config_reader.hpp"
#include "experiment/experiment.hpp"
#include "io/atomic_file.hpp"
#include "tensor/error.hpp"

extern char** environ;

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

namespace {

// The last line of a run's log that says what went wrong (or its last line).
std::string last_error(const std::string& log) {
  std::string text;
  try {
    text = io::read_file(log, std::size_t{64} << 20);
  } catch (const Error&) {
    return "(no log)";
  }
  std::istringstream in(text);
  std::string line, last, error;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    last = line;
    if (line.find("error") != std::string::npos || line.find("Error") != std::string::npos) error = line;
  }
  return error.empty() ? last : error;
}

// The environment a run starts with: this one, less what tells a process that mpirun started it, so a
// run of a distributed sweep is a process alone (Note [Launched or alone]).
std::vector<std::string> run_environment() {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string v = *e;
    if (v.rfind("OMPI_", 0) == 0 || v.rfind("PMIX_", 0) == 0 || v.rfind("PMI_", 0) == 0) continue;
    env.push_back(v);
  }
  return env;
}

pid_t start(const std::string& kiln, const SweepRun& run, bool resume) {
  std::vector<std::string> args{kiln, "train"};
  if (resume) {
    args.insert(args.end(), {"--resume", run.dir});
  } else {
    args.push_back(run.file);
    for (const auto& o : run.overrides) args.insert(args.end(), {"--set", o});
  }
  args.push_back("--quiet");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = run_environment();
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  fs::create_directories(run.dir);
  const std::string log = run.dir + "/train.log";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | (resume ? O_APPEND : O_TRUNC), 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, kiln.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  KILN_CHECK(rc == 0, "sweep: cannot start {}: {}", kiln, std::strerror(rc));
  return pid;
}

// The runs this process has going, up to `slots` at once.
class Local {
 public:
  Local(const SweepPlan& plan, std::string kiln, int slots) : plan_(plan), kiln_(std::move(kiln)), slots_(slots) {}
  bool free() const { return static_cast<int>(running_.size()) < slots_; }
  bool busy() const { return !running_.empty(); }
  void start(std::size_t i, bool resume) { running_[kiln::experiment::start(kiln_, plan_.runs[i], resume)] = i; }
  // The runs that ended (waiting for one when `wait` and any runs), with their outcomes.
  std::vector<std::pair<std::size_t, RunOutcome>> reap(bool wait) {
    std::vector<std::pair<std::size_t, RunOutcome>> out;
    while (busy()) {
      int status = 0;
      const pid_t pid = waitpid(-1, &status, wait && out.empty() ? 0 : WNOHANG);
      if (pid == 0) break;
      if (pid < 0) {
        KILN_CHECK(errno == EINTR, "sweep: waitpid: {}", std::strerror(errno));
        continue;
      }
      const auto it = running_.find(pid);
      if (it == running_.end()) continue;
      const std::size_t i = it->second;
      running_.erase(it);
      const SweepRun& r = plan_.runs[i];
      const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      RunOutcome o = ok ? read_outcome(r) : RunOutcome{};
      if (!ok) o.error = WIFSIGNALED(status) ? fmt::format("killed by signal {}", WTERMSIG(status)) : last_error(r.dir + "/train.log");
      out.emplace_back(i, std::move(o));
    }
    return out;
  }

 private:
  const SweepPlan& plan_;
  std::string kiln_;
  int slots_;
  std::map<pid_t, std::size_t> running_;
};

// What is left to run: (run, resume) for each run without a result (Note [Sweep runs]); fills the
// outcomes of finished ones.
std::vector<std::pair<std::size_t, bool>> to_run(const SweepPlan& plan, std::vector<RunOutcome>& out) {
  std::vector<std::pair<std::size_t, bool>> todo;
  for (std::size_t i = 0; i < plan.runs.size(); ++i) {
    const SweepRun& r = plan.runs[i];
    if (fs::exists(r.dir + "/result.json")) {
      out[i] = read_outcome(r);
      if (out[i].state == RunOutcome::State::Finished) {
        out[i].state = RunOutcome::State::Skipped;
        continue;
      }
    }
    const bool started = fs::exists(r.dir + "/config.yaml");
    if (started) {
      const std::string want = read_experiment(r.file, r.overrides).resolved_yaml;
      KILN_CHECK(io::read_file(r.dir + "/config.yaml", std::size_t{16} << 20) == want,
                 "sweep: {} holds a run of another configuration than the grid now makes (was the sweep file or the experiment "
                 "edited?); delete that folder, or give the sweep another output", r.dir);
    }
    bool checkpoint = false;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(r.dir + "/checkpoints", ec)) checkpoint |= e.path().extension() == ".safetensors";
    if (started && !checkpoint) fs::remove_all(r.dir);  // stopped before its first checkpoint: start it again
    todo.emplace_back(i, started && checkpoint);
  }
  return todo;
}

std::string outcome_json(std::size_t i, const RunOutcome& o) {
  return nlohmann::json{{"run", i}, {"state", static_cast<int>(o.state)}, {"error", o.error}, {"eval_loss", o.eval_loss},
                        {"eval_metric", o.eval_metric}, {"ms_per_step", o.ms_per_step}, {"metric", o.metric}, {"path", o.path},
                        {"steps", o.steps}}.dump();
}

std::pair<std::size_t, RunOutcome> outcome_of(const std::string& text) {
  const auto j = nlohmann::json::parse(text);
  RunOutcome o;
  o.state = static_cast<RunOutcome::State>(j.at("state").get<int>());
  o.error = j.at("error").get<std::string>();
  o.eval_loss = j.at("eval_loss").get<double>();
  o.eval_metric = j.at("eval_metric").get<double>();
  o.ms_per_step = j.at("ms_per_step").get<double>();
  o.metric = j.at("metric").get<std::string>();
  o.path = j.at("path").get<std::string>();
  o.steps = j.at("steps").get<std::int64_t>();
  return {j.at("run").get<std::size_t>(), o};
}

// Note [Distributed sweeps]: under mpirun, rank 0 decides what is left to run and hands runs out one at a
// time as ranks ask (a rank that finishes a run asks for the next), runs its own share beside that, and
// collects every outcome; the other ranks only run what they are given and send back each outcome, so
// the table needs no shared folder (the report's curves read the run folders where they are). Each run
// is a `kiln train` process alone (run_environment()).
enum Tag { kAsk = 1, kGive = 2, kOutcome = 3 };

void worker(const SweepPlan& plan, Local& local) {
  bool done = false;
  while (!done || local.busy()) {
    while (!done && local.free()) {
      dist::send("", 0, kAsk);
      const auto j = nlohmann::json::parse(dist::receive(0, kGive));
      if (j.at(0).get<std::int64_t>() < 0) {
        done = true;
      } else {
        local.start(j.at(0).get<std::size_t>(), j.at(1).get<bool>());
      }
    }
    for (const auto& [i, o] : local.reap(true)) dist::send(outcome_json(i, o), 0, kOutcome);
  }
  (void)plan;
}

}  // namespace

std::vector<RunOutcome> run_sweep(const SweepPlan& plan, const std::string& kiln, bool quiet) {
  std::vector<RunOutcome> out(plan.runs.size());
  Local local(plan, kiln, plan.parallel);
  if (dist::rank() != 0) {
    worker(plan, local);
    return out;
  }
  const auto todo = to_run(plan, out);
  const int ranks = dist::world_size();
  if (!quiet)
    fmt::print("kiln sweep {}: {} runs, {} finished before, {} to run, {} at once{}\n", plan.file, plan.runs.size(),
               plan.runs.size() - todo.size(), todo.size(), plan.parallel,
               ranks > 1 ? fmt::format(" on each of {} ranks", ranks) : "");
  std::size_t next = 0, done = 0;
  int stopped = 0;  // ranks told there is no more
  auto record = [&](std::size_t i, RunOutcome o, int who) {
    out[i] = std::move(o);
    ++done;
    if (quiet) return;
    const RunOutcome& r = out[i];
    fmt::print("  {:>3}/{} {} {}{}\n", done, todo.size(), plan.runs[i].dir,
               r.state == RunOutcome::State::Finished ? fmt::format("eval {} {:.4g}, {:.3g} ms/step", r.metric, r.eval_metric, r.ms_per_step)
                                                      : "FAILED: " + r.error,
               ranks > 1 ? fmt::format(" (rank {})", who) : "");
    std::fflush(stdout);
  };
  auto give = [&](int who) {
    const bool any = next < todo.size();
    if (any && !quiet) fmt::print("  start  {} {}{}\n", plan.runs[todo[next].first].dir, todo[next].second ? "(resumed)" : "",
                                  ranks > 1 ? fmt::format(" (rank {})", who) : ""), std::fflush(stdout);
    return any ? todo[next++] : std::pair<std::size_t, bool>{0, false};
  };
  while (done < todo.size() || stopped < ranks - 1) {
    bool moved = false;
    while (local.free() && next < todo.size()) {
      const auto [i, resume] = give(0);
      local.start(i, resume);
      moved = true;
    }
    for (auto& [i, o] : local.reap(ranks == 1)) record(i, std::move(o), 0), moved = true;
    int source = 0, tag = 0;
    while (ranks > 1 && dist::probe(&source, &tag)) {
      const std::string text = dist::receive(source, tag);
      moved = true;
      if (tag == kOutcome) {
        auto [i, o] = outcome_of(text);
        record(i, std::move(o), source);
      } else if (tag == kAsk) {
        if (next < todo.size()) {
          const auto [i, resume] = give(source);
          dist::send(nlohmann::json::array({i, resume}).dump(), source, kGive);
        } else {
          dist::send("[-1, false]", source, kGive);
          ++stopped;
        }
      }
    }
    if (!moved) usleep(20000);
  }
  return out;
}

}  // namespace kiln::experiment

// Running a sweep's runs: each a `kiln train` process, as many at once as asked, on one machine or spread
// over the ranks of mpirun (experiment/sweep.hpp, Note [Sweep runs], Note [Distributed sweeps]).

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "dist/dist.hpp"
#include "experiment/experiment.hpp"
#include "experiment/sweep.hpp"
#include "io/atomic_file.hpp"
#include "tensor/error.hpp"

extern char** environ;

namespace kiln::experiment {
namespace fs = std::filesystem;
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
  // The runs that ended (waiting for one when `wait` and any runs), with their outcomes. Each run's own
  // pid is asked after, never "any child": a library that reaps children of its own (an MPI runtime's
  // SIGCHLD handler) cannot take a run's exit from the sweep, and one it did take is read from the run
  // folder instead.
  std::vector<std::pair<std::size_t, RunOutcome>> reap(bool wait) {
    std::vector<std::pair<std::size_t, RunOutcome>> out;
    while (busy()) {
      for (auto it = running_.begin(); it != running_.end();) {
        int status = 0;
        const pid_t pid = waitpid(it->first, &status, WNOHANG);
        if (pid == 0 || (pid < 0 && errno == EINTR)) {
          ++it;
          continue;
        }
        const std::size_t i = it->second;
        it = running_.erase(it);
        const SweepRun& r = plan_.runs[i];
        RunOutcome o;
        if (pid < 0) {  // ECHILD: someone else waited for it
          o = read_outcome(r);
          if (o.state != RunOutcome::State::Finished) o.error = "its process ended unobserved: " + last_error(r.dir + "/train.log");
        } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
          o = read_outcome(r);
        } else {
          o.error = WIFSIGNALED(status) ? fmt::format("killed by signal {}", WTERMSIG(status)) : last_error(r.dir + "/train.log");
        }
        out.emplace_back(i, std::move(o));
      }
      if (!out.empty() || !wait) break;
      usleep(20000);
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

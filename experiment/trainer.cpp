#include "experiment/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "autograd/grad_mode.hpp"
#include "autograd/graph_dot.hpp"
#include "autograd/tape.hpp"
#include "dist/data_parallel.hpp"
#include "dist/dist.hpp"
#include "experiment/build_model.hpp"
#include "experiment/instruments.hpp"
#include "experiment/run_report.hpp"
#include "experiment/metrics_log.hpp"
#include "experiment/progress.hpp"
#include "experiment/run.hpp"
#include "experiment/tasks.hpp"
#include "io/atomic_file.hpp"
#include "io/safetensors.hpp"
#include "ops/ops.hpp"
#include "optim/optimizer.hpp"
#include "optim/scheduler.hpp"
#include "tensor/error.hpp"
#include "tensor/parallel.hpp"
#include "tensor/warning.hpp"

namespace kiln::experiment {
namespace fs = std::filesystem;
namespace {

std::unique_ptr<optim::Optimizer> make_optimizer(const OptimizerSpec& o, std::vector<Variable> params) {
  if (o.name == "sgd") return std::make_unique<optim::SGD>(params, optim::SGDOptions(o.lr).momentum(o.momentum).weight_decay(o.weight_decay));
  if (o.name == "rmsprop")
    return std::make_unique<optim::RMSprop>(params, optim::RMSpropOptions(o.lr).momentum(o.momentum).weight_decay(o.weight_decay));
  const auto adam = optim::AdamOptions(o.lr).betas(o.beta1, o.beta2).eps(o.eps).weight_decay(o.weight_decay);
  if (o.name == "adamw") return std::make_unique<optim::AdamW>(params, adam);
  return std::make_unique<optim::Adam>(params, adam);
}

std::unique_ptr<optim::LRScheduler> make_schedule(const ScheduleSpec& s, optim::Optimizer& opt, std::int64_t steps) {
  if (s.name == "step") return std::make_unique<optim::StepLR>(opt, s.step_size, s.gamma);
  if (s.name == "exponential") return std::make_unique<optim::ExponentialLR>(opt, s.gamma);
  if (s.name == "cosine") return std::make_unique<optim::CosineAnnealingLR>(opt, steps, s.eta_min);
  if (s.name == "warmup") return std::make_unique<optim::WarmupLR>(opt, s.warmup_steps, steps, 0.0, s.eta_min);
  return nullptr;
}

// The share of rows of `logits` [N, C] whose largest entry is at `labels` [N]; labels below 0 (padding)
// do not count. Returns (right, counted).
std::pair<double, double> arg_max_hits(const Tensor& logits, const Tensor& labels, std::int64_t classes) {
  const auto l = logits.to_vector(), y = labels.to_vector();
  double right = 0, counted = 0;
  for (std::size_t r = 0; r < y.size(); ++r) {
    if (y[r] < 0) continue;
    const auto row = l.begin() + static_cast<std::ptrdiff_t>(r) * classes;
    right += std::max_element(row, row + classes) - row == static_cast<std::ptrdiff_t>(y[r]);
    ++counted;
  }
  return {right, counted};
}

}  // namespace

Outcome score(const Task& task, const Variable& out, const Tensor& y) {
  Outcome o;
  switch (task.loss()) {
    case Loss::MeanSquared:
      o.loss = mse_loss(out, Variable(y));
      o.metric = o.loss.value().item();
      break;
    case Loss::Binary: {
      o.loss = binary_cross_entropy_with_logits(out, Variable(y));
      const auto logits = out.value().to_vector(), labels = y.to_vector();
      std::size_t right = 0;
      for (std::size_t i = 0; i < logits.size(); ++i) right += (logits[i] > 0) == (labels[i] > 0.5);
      o.metric = static_cast<double>(right) / static_cast<double>(logits.size());
      break;
    }
    case Loss::Classes:
    case Loss::PerStepClasses: {
      const std::int64_t classes = out.size(-1);
      o.loss = cross_entropy(reshape(out, {-1, classes}), Variable(reshape(y, {-1})), kIgnoreLabel);
      if (task.metric() == "bits_per_char") {
        o.metric = o.loss.value().item() / std::log(2.0);
      } else if (task.metric() == "perplexity") {
        o.metric = std::exp(o.loss.value().item());
      } else {
        const auto [right, counted] = arg_max_hits(out.value(), y, classes);
        o.metric = counted > 0 ? right / counted : 0;
      }
      break;
    }
  }
  return o;
}

namespace {

// train.epochs: the steps of that many passes over the task's training data; evaluation and checkpoints
// once an epoch unless given.
void resolve_epochs(TrainSpec& t, const Task& task, const DataSpec& d) {
  const std::int64_t n = task.train_examples();
  KILN_CHECK(n > 0, "train.epochs: the task '{}' generates its data without end; give train.steps instead", d.task);
  const std::int64_t per_epoch = (n + d.batch - 1) / d.batch;
  KILN_CHECK(t.epochs <= 1'000'000'000 / per_epoch, "train.epochs: {} epochs of {} steps are more than 1000000000 steps", t.epochs,
             per_epoch);
  t.steps = t.epochs * per_epoch;
  if (t.eval_every == 0) t.eval_every = per_epoch;
  if (t.checkpoint_every == 0) t.checkpoint_every = per_epoch;
  KILN_CHECK(t.schedule.name != "warmup" || t.schedule.warmup_steps < t.steps, "train.schedule.warmup_steps: {} is not below the "
             "{} steps of {} epochs", t.schedule.warmup_steps, t.steps, t.epochs);
}

}  // namespace

std::unique_ptr<Run> make_run(const Experiment& e) {
  set_num_threads(e.threads);
  manual_seed(e.seed);
  auto run = std::make_unique<Run>();
  run->e = e;
  run->data.seed(e.seed ^ 0xd1b54a32d192ed03ull);
  run->task = make_task(e.data, e.dtype, e.seed);
  if (e.train.epochs > 0) resolve_epochs(run->e.train, *run->task, e.data);
  run->model = build_model(e, *run->task);
  run->model->module().to(e.dtype);
  if (dist::distributed()) {
    KILN_CHECK(e.data.batch >= dist::world_size(), "data.batch: {} rows cannot be shared by {} ranks; give at least one a rank",
               e.data.batch, dist::world_size());
    // rank 0's weights on every rank; the model stays the run's (an aliasing pointer that owns nothing)
    run->ddp = std::make_unique<dist::DataParallel>(std::shared_ptr<nn::Module>(std::shared_ptr<void>(), &run->model->module()));
  }
  run->optimizer = make_optimizer(e.train.optimizer, run->model->module().parameters());
  run->schedule = make_schedule(run->e.train.schedule, *run->optimizer, run->e.train.steps);
  return run;
}

namespace {

// Greedy decoding of a seq2seq batch: how many outputs equal their target exactly.
double exact_matches(Run& run, const Batch& b) {
  const auto opts = nn::SearchOptions(kBosId, kEosId).max_len(run.task->max_target_length()).keep_attention(false);
  const auto best = nn::greedy_search(*run.model->decoder(), Variable(b.x), Variable(b.lengths), opts);
  const std::int64_t T = b.y.size(1);
  const std::int64_t* y = b.y.data<std::int64_t>();
  double right = 0;
  for (std::size_t i = 0; i < best.size(); ++i) {
    std::vector<std::int64_t> want;
    for (std::int64_t t = 0; t < T; ++t) {
      const std::int64_t id = y[static_cast<std::int64_t>(i) * T + t];
      if (id == kEosId || id < 0) break;
      want.push_back(id);
    }
    right += best[i].tokens == want;
  }
  return right;
}

// The mean loss and metric over the evaluation batches (each row counts once).
std::pair<double, double> evaluate(Run& run) {
  NoGradGuard no_grad;
  run.model->module().eval();
  double loss = 0, metric = 0, rows = 0;
  const std::int64_t n = run.task->eval_batch_count() > 0 ? run.task->eval_batch_count() : run.e.data.eval_batches;
  // Under mpirun the batches are shared out (batch i to rank i % N) and the sums reduced (Note [Data-parallel steps]).
  for (std::int64_t i = dist::rank(); i < n; i += dist::world_size()) {
    const Batch b = run.task->eval_batch(i);
    const Outcome o = score(*run.task, run.model->forward(b), b.y);
    const auto r = static_cast<double>(b.x.size(0));
    loss += o.loss.value().item() * r;
    metric += (run.task->seq2seq() ? exact_matches(run, b) / r : o.metric) * r;
    rows += r;
  }
  run.model->module().train();
  if (dist::distributed()) loss = dist::all_reduce(loss), metric = dist::all_reduce(metric), rows = dist::all_reduce(rows);
  return {loss / rows, metric / rows};
}

std::string checkpoint_name(std::int64_t step) { return fmt::format("step_{:09d}.safetensors", step); }

void save_checkpoint(const Run& run, const std::string& dir, std::int64_t step) {
  std::map<std::string, Tensor> tensors;
  for (const auto& [k, t] : run.model->module().state_dict()) tensors["model." + k] = t;
  for (const auto& [k, t] : run.optimizer->state_dict()) tensors["optimizer." + k] = t;
  if (run.schedule)
    for (const auto& [k, t] : run.schedule->state_dict()) tensors["schedule." + k] = t;
  const std::map<std::string, std::string> meta{{"kiln.checkpoint", "1"},
                                                {"step", std::to_string(step)},
                                                {"optimizer", run.optimizer->name()},
                                                {"generator.data", run.data.state()},
                                                {"data.position", run.task->position()},
                                                {"generator.default", default_generator().state()},
                                                {"config", run.e.resolved_yaml},
                                                {"world_size", std::to_string(dist::world_size())}};
  io::save_safetensors(dir + "/" + checkpoint_name(step), tensors, meta);
}

// Restores a checkpoint into `run`; returns its step. Throws naming what does not match.
std::int64_t load_checkpoint(Run& run, const std::string& path) {
  const io::Safetensors f = io::load_safetensors(path);
  auto meta = [&](const char* key) {
    const auto it = f.metadata.find(key);
    KILN_CHECK(it != f.metadata.end(), "{}: not a Kiln checkpoint: no '{}' in its metadata", path, key);
    return it->second;
  };
  KILN_CHECK(meta("kiln.checkpoint") == "1", "{}: a checkpoint of another version ({})", path, meta("kiln.checkpoint"));
  if (meta("config") != run.e.resolved_yaml) {
    const std::string a = meta("config"), b = run.e.resolved_yaml;
    std::size_t line = 1, i = 0;
    for (; i < std::min(a.size(), b.size()) && a[i] == b[i]; ++i) line += a[i] == '\n';
    throw Error(fmt::format("{}: written by another configuration than the run's config.yaml (they differ from line {})", path, line));
  }
  const auto ranks = f.metadata.find("world_size");
  const std::string written = ranks == f.metadata.end() ? "1" : ranks->second;
  KILN_CHECK(written == std::to_string(dist::world_size()), "{}: written by a run on {} rank(s), resumed on {}: resume it with {} "
             "(how the ranks' gradients are summed is part of the run's bits)", path, written, dist::world_size(),
             written == "1" ? std::string("no mpirun") : "mpirun -np " + written);
  KILN_CHECK(meta("optimizer") == std::string(run.optimizer->name()), "{}: holds the state of optimiser {}, the run uses {}", path,
             meta("optimizer"), run.optimizer->name());
  std::int64_t step = -1;
  try {
    step = std::stoll(meta("step"));
  } catch (const std::exception&) {
  }
  KILN_CHECK(step >= 0 && step <= run.e.train.steps, "{}: step '{}' is not a step of this run (0 to {})", path, meta("step"),
             run.e.train.steps);
  std::map<std::string, std::map<std::string, Tensor>> parts;
  for (const auto& [k, t] : f.tensors) {
    const auto dot = k.find('.');
    KILN_CHECK(dot != std::string::npos, "{}: unexpected tensor '{}'", path, k);
    parts[k.substr(0, dot)][k.substr(dot + 1)] = t;
  }
  try {
    run.model->module().load_state_dict(parts["model"]);
    run.optimizer->load_state_dict(parts["optimizer"]);
    if (run.schedule) run.schedule->load_state_dict(parts["schedule"]);
    run.data.set_state(meta("generator.data"));
    const auto position = f.metadata.find("data.position");
    run.task->set_position(position == f.metadata.end() ? "" : position->second);
    default_generator().set_state(meta("generator.default"));
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", path, e.what()));
  }
  return step;
}

// Checkpoint files of a run folder, newest first.
std::vector<std::pair<std::int64_t, std::string>> checkpoints(const std::string& dir) {
  std::vector<std::pair<std::int64_t, std::string>> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("step_", 0) != 0 || entry.path().extension() != ".safetensors") continue;
    try {
      out.emplace_back(std::stoll(name.substr(5)), entry.path().string());
    } catch (const std::exception&) {
    }
  }
  std::sort(out.rbegin(), out.rend());
  return out;
}

// Note [Run results]: result.json, written atomically when a run ends: its final losses and metric, the
// time its training steps took (evaluation, instruments and checkpoints left out), the path each
// recurrent layer ran (a kernel's name, or "generic"), a forward and backward pass timed on the generic
// graph and on the kernels (instruments.hpp's time_paths) and the parameter count. A sweep reads it to know a
// run is finished; the report reads it for its summary.
void write_result(Run& run, const std::string& dir, const TrainResult& r, double step_seconds, std::int64_t timed_steps) {
  nlohmann::json j{{"steps", r.steps},
                   {"resumed_from", r.resumed_from},
                   {"train_loss", r.train_loss},
                   {"eval_loss", r.eval_loss},
                   {"metric", r.metric},
                   {"eval_metric", r.eval_metric},
                   {"train_seconds", step_seconds},
                   {"ms_per_step", timed_steps > 0 ? 1000 * step_seconds / static_cast<double>(timed_steps) : 0.0},
                   {"threads", run.e.threads},
                   {"parameters", run.model->module().num_parameters()}};
  j["layers"] = nlohmann::json::array();
  for (const auto& [name, path] : layer_paths(*run.model)) j["layers"].push_back({{"name", name}, {"path", path}});
  // Generic against fused, on the first evaluation batch (Note [Run results]).
  const Batch b = run.task->eval_batch(0);
  std::optional<dist::DataParallel::NoSync> alone;  // rank 0's own passes: nothing to reduce
  if (run.ddp) alone.emplace(*run.ddp);
  j["timing"] = nlohmann::json::array();
  for (const auto& t : time_paths(*run.model, b, [&](const Variable& out) { return score(*run.task, out, b.y).loss; }))
    j["timing"].push_back({{"path", t.path}, {"ms", t.ms}});
  io::write_file_atomic(dir + "/result.json", j.dump(2) + "\n");
}

// Note [Data-parallel steps]: under mpirun every rank draws the same global batch from the same data
// generator and takes its own rows (rank r of N: B/N rows, the first B % N ranks one more). Its loss is
// the mean over its rows (or its counted tokens), and its gradient is weighted by its share of the global
// batch's counted targets before the ranks' gradients are summed (dist::DataParallel), so every rank
// holds the gradient of the global batch's mean loss and takes the same step; the loss shown is the
// global mean. Evaluation batches are shared out among the ranks and their sums reduced. Rank 0 alone
// writes the run folder.
Batch rows_of(const Batch& b, std::int64_t start, std::int64_t count) {
  auto rows = [&](const Tensor& t) {
    if (!t.defined()) return t;
    Shape s = t.shape();
    const std::int64_t per = s[0] > 0 ? t.numel() / s[0] : 0;
    s[0] = count;
    return t.view_range(start * per, s);
  };
  return {rows(b.x), rows(b.y), rows(b.lengths), rows(b.tgt_in)};
}

// The targets a task's loss counts in y: every element, or the labels that are not padding.
double counted(const Task& task, const Tensor& y) {
  if (task.loss() != Loss::Classes && task.loss() != Loss::PerStepClasses) return static_cast<double>(y.numel());
  double n = 0;
  for (double v : y.to_vector()) n += v != kIgnoreLabel;
  return n;
}

// One optimiser step on `global` (this rank's rows of it under mpirun); returns the global batch's loss.
double train_step(Run& run, const Batch& global) {
  Batch b = global;
  double weight = 1;
  if (run.ddp) {
    const std::int64_t B = global.x.size(0), n = dist::world_size(), r = dist::rank(), extra = B % n;
    b = rows_of(global, r * (B / n) + std::min(r, extra), B / n + (r < extra ? 1 : 0));
    const double mine = counted(*run.task, b.y), total = dist::all_reduce(mine);
    weight = total > 0 ? mine / total : 0;
  }
  run.optimizer->zero_grad();
  const std::uint64_t reduced = run.ddp ? run.ddp->reductions() : 0;
  if (run.ddp) run.ddp->set_share(weight);
  const Outcome o = score(*run.task, run.model->forward(b), b.y);
  if (weight > 0) o.loss.backward();  // summed over the ranks as it goes (Note [Gradient buckets])
  // A rank whose rows are all padding adds nothing, but still takes part in the sum.
  if (run.ddp && run.ddp->reductions() == reduced) run.ddp->synchronize();
  const TrainSpec& t = run.e.train;
  if (t.clip_grad_norm > 0) optim::clip_grad_norm_(run.optimizer->params(), t.clip_grad_norm);
  run.optimizer->step();
  if (run.schedule) run.schedule->step();
  const double loss = o.loss.value().item();
  return run.ddp ? dist::all_reduce(weight > 0 ? loss * weight : 0.0) : loss;
}

// attention.json: for an encoder-decoder with attention, the weights of greedy decoding of the first
// evaluation examples (a row per output token and EOS, a column per source token), for the report.
void write_attention(Run& run, const std::string& dir) {
  if (!run.task->seq2seq() || run.model->decoder() == nullptr) return;
  KeepDefaultGenerator keep;
  NoGradGuard no_grad;
  run.model->module().eval();
  const Batch b = run.task->eval_batch(0);
  const auto opts = nn::SearchOptions(kBosId, kEosId).max_len(run.task->max_target_length()).keep_attention(true);
  const auto best = nn::greedy_search(*run.model->decoder(), Variable(b.x), Variable(b.lengths), opts);
  run.model->module().train();
  nlohmann::json out = nlohmann::json::array();
  const std::int64_t S = b.x.size(1);
  for (std::size_t i = 0; i < best.size() && i < 3; ++i) {
    if (best[i].attention.empty()) return;  // no attention in this model
    const std::int64_t* row = b.x.data<std::int64_t>() + static_cast<std::int64_t>(i) * S;
    const std::int64_t n = b.lengths.defined() ? b.lengths.data<std::int64_t>()[i] : S;
    std::vector<std::string> source, output;
    for (std::int64_t k = 0; k < n; ++k) source.push_back(run.task->decode_input({row[k]}));
    for (std::int64_t id : best[i].tokens) output.push_back(run.task->decode({id}));
    if (output.size() < best[i].attention.size()) output.push_back("<eos>");
    std::vector<std::vector<double>> weights;
    for (const auto& a : best[i].attention) weights.emplace_back(a.begin(), a.begin() + std::min<std::ptrdiff_t>(n, static_cast<std::ptrdiff_t>(a.size())));
    out.push_back({{"source", source}, {"output", output}, {"weights", weights}});
  }
  io::write_file_atomic(dir + "/attention.json", out.dump() + "\n");
}

TrainResult loop(Run& run, const std::string& dir, std::int64_t first, const TrainOptions& options) {
  const Experiment& e = run.e;
  const TrainSpec& t = e.train;
  const bool main = dist::rank() == 0;  // Note [Data-parallel steps]: rank 0 writes
  std::optional<MetricsLog> log;
  if (main) log.emplace(dir, first > 0 ? first : -1);
  // Instruments (experiment/instruments.hpp) every `every` steps and before the first.
  const std::int64_t every = e.instruments.every < 0 ? std::max<std::int64_t>(1, t.steps / 20) : e.instruments.every;
  const std::string instruments_path = dir + "/instruments.jsonl";
  if (main && first > 0)
    trim_jsonl(instruments_path, first);
  else if (main)
    io::write_file_atomic(instruments_path, "");
  std::ofstream instruments;
  if (main) instruments.open(instruments_path, std::ios::app);
  auto instrument = [&](std::int64_t step) {
    if (!main || every == 0 || layer_paths(*run.model).empty()) return;
    std::optional<dist::DataParallel::NoSync> alone;  // rank 0's own passes: nothing to reduce
    if (run.ddp) alone.emplace(*run.ddp);
    const Batch b = run.task->eval_batch(0);
    const auto loss_of = [&](const Variable& out) { return score(*run.task, out, b.y).loss; };
    instruments << to_json_line(record_instruments(*run.model, b, loss_of, e.instruments, step)) << "\n" << std::flush;
  };
  if (first == 0) instrument(0);
  double step_seconds = 0;
  Progress progress(first, t.steps, options.quiet || !main);
  TrainResult r;
  r.run_dir = dir;
  r.resumed_from = first;
  r.metric = run.task->metric();
  const std::string ckpt_dir = dir + "/checkpoints";
  if (main) fs::create_directories(ckpt_dir);
  run.model->module().train();
  for (std::int64_t step = first + 1; step <= t.steps; ++step) {
    const auto started = std::chrono::steady_clock::now();
    const double lr = run.optimizer->lr();
    r.train_loss = train_step(run, run.task->train_batch(run.data));
    step_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    KILN_CHECK(std::isfinite(r.train_loss), "step {}: the loss is {}; lower train.optimizer.lr or set train.clip_grad_norm "
               "(the last checkpoint is in {})", step, r.train_loss, ckpt_dir);
    if (main && (step % t.log_every == 0 || step == t.steps))
      log->add({step, "train", r.train_loss, "", 0, lr, progress.rate(step)});
    progress.step(step, r.train_loss, t.log_every * 10);
    if (step % t.eval_every == 0 || step == t.steps) {
      std::tie(r.eval_loss, r.eval_metric) = evaluate(run);
      if (main) log->add({step, "eval", r.eval_loss, r.metric, r.eval_metric, lr, 0});
      const std::string epoch = t.epochs > 0 ? fmt::format(" (epoch {:.3g})", static_cast<double>(step * t.epochs) / static_cast<double>(t.steps)) : "";
      progress.line(fmt::format("step {}{}: eval loss {:.4g}, {} {:.4g}", step, epoch, r.eval_loss, r.metric, r.eval_metric));
    }
    if (main && (step % t.checkpoint_every == 0 || step == t.steps)) {
      save_checkpoint(run, ckpt_dir, step);
      const auto all = checkpoints(ckpt_dir);
      for (std::size_t i = static_cast<std::size_t>(t.keep_checkpoints); i < all.size(); ++i) fs::remove(all[i].second);
    }
    if (every > 0 && step % every == 0) instrument(step);
  }
  progress.finish();
  r.steps = t.steps;
  if (!main) return r;
  io::save_safetensors(dir + "/model.safetensors", run.model->module().state_dict(),
                       {{"step", std::to_string(t.steps)}, {"config", e.resolved_yaml}});
  write_result(run, dir, r, step_seconds, t.steps - first);
  write_attention(run, dir);
  write_run_report(dir);
  return r;
}

}  // namespace

TrainResult train(const Experiment& e, const TrainOptions& options) {
  std::string dir = e.output;
  if (!e.output_given)  // runs/<file name>/run_<N>: a new folder each time
    for (int n = 0;; ++n)
      if (dir = fmt::format("{}/run_{}", e.output, n); !fs::exists(dir)) break;
  dir = dist::broadcast(dir);  // rank 0's choice
  KILN_CHECK(checkpoints(dir + "/checkpoints").empty() && !fs::exists(dir + "/model.safetensors"),
             "output: '{}' already holds a run; continue it with `kiln train --resume {}`, or choose another output "
             "(--set output=...)", dir, dir);
  auto run = make_run(e);
  if (dist::rank() != 0) return loop(*run, dir, 0, options);
  fs::create_directories(dir);
  io::write_file_atomic(dir + "/config.yaml", e.resolved_yaml);
  {
    KeepDefaultGenerator keep;  // the summary's forward pass draws nothing the run will see
    NoGradGuard no_grad;
    io::write_file_atomic(dir + "/summary.txt", run->model->summary(run->task->eval_batch(0)));
    run->model->module().train();
  }
  return loop(*run, dir, 0, options);
}

std::unique_ptr<Run> open_run(const std::string& dir, const char* command) {
  const std::string config = dir + "/config.yaml";
  KILN_CHECK(fs::exists(config), "{} {}: not a run folder (no config.yaml)", command, dir);
  Experiment e = parse_experiment(io::read_file(config, std::size_t{16} << 20), config);
  e.output = dir;
  return make_run(e);
}

std::pair<std::string, std::int64_t> load_weights(Run& run, const std::string& dir, const char* command) {
  const std::string model = dir + "/model.safetensors";
  if (fs::exists(model)) {
    const io::Safetensors f = io::load_safetensors(model);
    try {
      run.model->module().load_state_dict(f.tensors);
    } catch (const Error& e) {
      throw Error(fmt::format("{}: {}", model, e.what()));
    }
    return {model, run.e.train.steps};
  }
  for (const auto& [step, path] : checkpoints(dir + "/checkpoints")) {
    try {
      return {path, load_checkpoint(run, path)};
    } catch (const Error& e) {
      warn_once(fmt::format("{} {}: {}; trying an older checkpoint", command, dir, e.what()));
    }
  }
  throw Error(fmt::format("{} {}: no weights yet (no model.safetensors, no readable checkpoint)", command, dir));
}

std::string training_step_dot(const Experiment& e) {
  auto run = make_run(e);
  run->model->module().train();
  set_tape_scopes(true);
  struct Off {
    ~Off() { set_tape_scopes(false); }
  } off;
  const Batch b = run->task->train_batch(run->data);
  const Outcome o = score(*run->task, run->model->forward(b), b.y);
  return graph_dot(o.loss);
}

EvalResult evaluate_run(const std::string& dir) {
  auto run = open_run(dir, "eval");
  EvalResult r;
  std::tie(r.weights, r.step) = load_weights(*run, dir, "eval");
  std::tie(r.loss, r.metric) = evaluate(*run);
  r.metric_name = run->task->metric();
  return r;
}

TrainResult resume(const std::string& dir, const TrainOptions& options) {
  auto run = open_run(dir, "--resume");
  const Experiment e = run->e;
  const auto all = checkpoints(dir + "/checkpoints");
  KILN_CHECK(!all.empty(), "--resume {}: no checkpoint yet in {}/checkpoints; start it again with `kiln train`", dir, dir);
  std::string refused;
  std::int64_t first = -1;
  for (const auto& [step, path] : all) {
    try {
      first = load_checkpoint(*run, path);
      if (!refused.empty()) warn_once(fmt::format("--resume: {}; resuming from {} instead", refused, path));
      break;
    } catch (const Error& err) {
      if (refused.empty()) refused = err.what();
      run = make_run(e);  // nothing of a refused checkpoint stays
    }
  }
  if (first >= 0) return loop(*run, dir, first, options);
  throw Error(fmt::format("--resume {}: no readable checkpoint; the newest: {}", dir, refused));
}

}  // namespace kiln::experiment

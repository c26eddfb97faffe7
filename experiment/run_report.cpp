#include "experiment/run_report.hpp"

#include <filesystem>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "experiment/instruments.hpp"
#include "io/atomic_file.hpp"
#include "report/html.hpp"
#include "report/svg.hpp"
#include "tensor/error.hpp"
#include "tensor/warning.hpp"

namespace kiln::experiment {
namespace fs = std::filesystem;
namespace {

std::string read_if(const std::string& path) {
  return fs::exists(path) ? io::read_file(path, std::size_t{256} << 20) : std::string();
}

// Each complete line of a JSON-lines file, parsed; a corrupt line is an error naming the file and line.
// Note [Torn last line]: a run stopped by a signal (SIGKILL, a lost node) can leave the last line of a
// JSON-lines file half written. A last line without its newline that does not read is left out, with a
// warning naming the file and line; any other line that does not read is refused (the file is corrupt).
// take(line, n) reads line n and throws kiln::Error when it cannot.
template <class F>
void each_json_line(const std::string& path, F&& take) {
  const std::string text = read_if(path);
  const bool unterminated = !text.empty() && text.back() != '\n';
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    try {
      take(line, n);
    } catch (const Error&) {
      if (!unterminated || in.peek() != std::char_traits<char>::eof()) throw;
      warn_once(fmt::format("report: {}:{}: a half-written last line (the run was stopped while writing it) is left out", path, n));
    }
  }
}

std::vector<nlohmann::json> json_lines(const std::string& path) {
  std::vector<nlohmann::json> out;
  each_json_line(path, [&](const std::string& line, int n) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    KILN_CHECK(!j.is_discarded() && j.is_object(), "report: {}:{} is not a JSON object", path, n);
    out.push_back(std::move(j));
  });
  return out;
}

std::string fixed(double v) { return fmt::format("{:.4g}", v); }

void curves(report::Page& page, const std::vector<nlohmann::json>& metrics) {
  report::Series train{"train", {}, {}}, eval{"eval", {}, {}}, metric{"", {}, {}};
  for (const auto& m : metrics) {
    const double step = m.value("step", 0.0), loss = m.value("loss", 0.0);
    if (m.value("split", "") == "train") {
      train.x.push_back(step), train.y.push_back(loss);
    } else {
      eval.x.push_back(step), eval.y.push_back(loss);
      for (const auto& [k, v] : m.items())
        if (k != "step" && k != "split" && k != "loss" && k != "lr" && v.is_number()) metric.name = k, metric.x.push_back(step), metric.y.push_back(v.get<double>());
    }
  }
  if (train.x.empty() && eval.x.empty()) return;
  page.heading("Loss and metric", "curves");
  page.figure(report::line_chart({"Loss", "training step", "loss", {train, eval}, false}), "Training loss (logged steps) and evaluation loss.");
  if (!metric.x.empty())
    page.figure(report::line_chart({"Evaluation " + metric.name, "training step", metric.name, {metric}, false}),
                "The task's metric on the evaluation batches.");
}

void gradient_flow(report::Page& page, const std::vector<InstrumentRecord>& records) {
  std::map<std::string, std::pair<std::vector<std::vector<double>>, std::vector<std::string>>> maps;  // layer -> rows, labels
  std::vector<std::string> order;
  for (const auto& r : records)
    for (const auto& l : r.layers) {
      if (l.grad_norms.empty()) continue;
      if (!maps.count(l.name)) order.push_back(l.name);
      maps[l.name].first.push_back(l.grad_norms);
      maps[l.name].second.push_back(std::to_string(r.step));
    }
  if (order.empty()) return;
  page.heading("Gradient flow through time", "gradient-flow");
  page.paragraph("||dL/dh_t|| for every step t of the first evaluation batch (columns), recorded every few training steps (rows; "
                 "colour on a log scale). A gradient vanishing through time shows as columns going dark towards t = 0.");
  std::vector<report::Series> last;
  for (const auto& name : order) {
    const auto& [rows, labels] = maps[name];
    std::vector<std::string> cols;
    for (std::size_t t = 0; t < rows.back().size(); ++t) cols.push_back(std::to_string(t));
    page.figure(report::heatmap({"dL/dh_t: " + name, "time step t", "training step", rows, labels, cols, true}),
                fmt::format("{}: gradient norm per time step over training.", name));
    report::Series s{name, {}, rows.back()};
    for (std::size_t t = 0; t < rows.back().size(); ++t) s.x.push_back(static_cast<double>(t));
    last.push_back(std::move(s));
  }
  page.figure(report::line_chart({fmt::format("dL/dh_t at training step {}", records.back().step), "time step t", "||dL/dh_t||", last, true}),
              "The last record's gradient norms (log scale).");
}

void spectra(report::Page& page, const std::vector<InstrumentRecord>& records) {
  std::map<std::string, report::Series> radius;  // "layer: matrix" -> radius over training
  std::vector<std::string> order;
  std::vector<report::Series> singular;
  std::vector<std::vector<std::string>> table;
  for (const auto& r : records)
    for (const auto& l : r.layers) {
      double jac = 0, n = 0;
      for (const auto& s : l.spectra) {
        if (s.step >= 0) {
          jac += s.radius, ++n;
          continue;
        }
        const std::string key = l.name + ": " + s.name;
        if (!radius.count(key)) order.push_back(key), radius[key].name = key;
        radius[key].x.push_back(static_cast<double>(r.step)), radius[key].y.push_back(s.radius);
      }
      if (n > 0) {
        const std::string key = l.name + ": step Jacobian (mean)";
        if (!radius.count(key)) order.push_back(key), radius[key].name = key;
        radius[key].x.push_back(static_cast<double>(r.step)), radius[key].y.push_back(jac / n);
      }
    }
  if (order.empty()) return;
  page.heading("Spectra", "spectra");
  page.paragraph("Spectral radius (largest |eigenvalue|, by LAPACK through xtensor-blas) of each recurrent weight block and of the "
                 "step Jacobian ds_t/ds_{t-1} of the whole state, over training; the singular values at the last record.");
  std::vector<report::Series> shown;
  for (const auto& k : order) shown.push_back(radius[k]);
  page.figure(report::line_chart({"Spectral radius over training", "training step", "radius", shown, false}),
              "Spectral radius of each recurrent matrix and the mean over the sampled steps' Jacobians.");
  for (const auto& l : records.back().layers)
    for (const auto& s : l.spectra) {
      report::Series ser{l.name + ": " + s.name, {}, s.singular_values};
      for (std::size_t i = 0; i < s.singular_values.size(); ++i) ser.x.push_back(static_cast<double>(i));
      singular.push_back(std::move(ser));
      table.push_back({l.name, s.name, s.singular_values.empty() ? "-" : fixed(s.singular_values.front()),
                       s.singular_values.empty() ? "-" : fixed(s.singular_values.back()), fixed(s.radius)});
    }
  page.figure(report::line_chart({fmt::format("Singular values at training step {}", records.back().step), "index", "singular value",
                                  singular, true}), "Singular values, largest first (log scale).");
  page.table({"layer", "matrix", "largest singular value", "smallest", "spectral radius"}, table, "spectra");
}

void saturation(report::Page& page, const std::vector<InstrumentRecord>& records) {
  std::map<std::string, report::Series> series;
  std::vector<std::string> order;
  for (const auto& r : records)
    for (const auto& l : r.layers)
      for (const auto& s : l.saturation) {
        const std::string key = l.name + ": " + s.op;
        if (!series.count(key)) order.push_back(key), series[key].name = key;
        series[key].x.push_back(static_cast<double>(r.step)), series[key].y.push_back(s.fraction);
      }
  if (order.empty()) return;
  page.heading("Gate saturation", "saturation");
  page.paragraph("The share of each sigmoid's outputs below 0.1 or above 0.9 (and of each tanh's beyond +-0.9), per activation of a "
                 "cell step in the order the cell computes them, over the first evaluation batch.");
  std::vector<report::Series> shown;
  for (const auto& k : order) shown.push_back(series[k]);
  page.figure(report::line_chart({"Saturation over training", "training step", "share saturated", shown, false}),
              "Gate saturation over training.");
}

// Attention weights of greedy decoding (attention.json, written by the trainer for seq2seq models).
void attention(report::Page& page, const std::string& path) {
  const std::string text = read_if(path);
  if (text.empty()) return;
  const auto j = nlohmann::json::parse(text, nullptr, false);
  KILN_CHECK(j.is_array(), "report: {} is not a JSON list", path);
  if (j.empty()) return;
  page.heading("Attention", "attention");
  page.paragraph("The decoder's attention over the source while decoding the first evaluation examples greedily: a row per output "
                 "token, a column per source token (bright = more weight).");
  for (const auto& ex : j) {
    try {
      report::Heatmap m{"", "source", "output", ex.at("weights").get<std::vector<std::vector<double>>>(),
                        ex.at("output").get<std::vector<std::string>>(), ex.at("source").get<std::vector<std::string>>(), false};
      std::string src, out;
      for (const auto& t : m.column_labels) src += t;
      for (const auto& t : m.row_labels) out += t == "<eos>" ? "" : t;
      m.title = src + " -> " + out;
      page.figure(report::heatmap(m), "Attention weights: " + m.title);
    } catch (const nlohmann::json::exception& e) {
      throw Error(fmt::format("report: {}: {}", path, e.what()));
    }
  }
}

}  // namespace

std::string write_run_report(const std::string& dir) {
  report::Page page("kiln train: " + dir);
  const std::string result_text = read_if(dir + "/result.json");
  if (!result_text.empty()) {
    const auto r = nlohmann::json::parse(result_text, nullptr, false);
    KILN_CHECK(r.is_object(), "report: {}/result.json is not a JSON object", dir);
    page.heading("Result", "result");
    const std::string metric = r.value("metric", "metric");
    page.table({"steps", "train loss", "eval loss", "eval " + metric, "ms per step", "threads", "parameters"},
               {{std::to_string(r.value("steps", 0)), fixed(r.value("train_loss", 0.0)), fixed(r.value("eval_loss", 0.0)),
                 fixed(r.value("eval_metric", 0.0)), fixed(r.value("ms_per_step", 0.0)), std::to_string(r.value("threads", 1)),
                 std::to_string(r.value("parameters", 0))}},
               "result");
    std::vector<std::vector<std::string>> paths;
    if (r.contains("layers"))
      for (const auto& l : r["layers"]) paths.push_back({l.value("name", ""), l.value("path", "")});
    if (!paths.empty()) page.table({"recurrent layer", "path (generic graph or fused kernel)"}, paths, "paths");
    std::vector<std::vector<std::string>> timing;
    double generic = 0;
    if (r.contains("timing"))
      for (const auto& t : r["timing"]) {
        const double ms = t.value("ms", 0.0);
        if (t.value("path", "") == "generic") generic = ms;
        timing.push_back({t.value("path", ""), fixed(ms), generic > 0 && ms > 0 ? fmt::format("{:.2f}x", generic / ms) : "-"});
      }
    if (!timing.empty())
      page.table({"path", "forward + backward, ms (first evaluation batch)", "speed-up over generic"}, timing, "timing");
  }
  curves(page, json_lines(dir + "/metrics.jsonl"));
  std::vector<InstrumentRecord> records;
  each_json_line(dir + "/instruments.jsonl", [&](const std::string& line, int n) {
    try {
      records.push_back(from_json_line(line));
    } catch (const Error& e) {
      throw Error(fmt::format("report: {}/instruments.jsonl:{}: {}", dir, n, e.what()));
    }
  });
  if (!records.empty()) {
    gradient_flow(page, records);
    spectra(page, records);
    saturation(page, records);
  }
  attention(page, dir + "/attention.json");
  const std::string summary = read_if(dir + "/summary.txt");
  if (!summary.empty()) page.heading("Model", "model"), page.pre(summary);
  page.heading("Config", "config");
  page.pre(read_if(dir + "/config.yaml"));
  const std::string path = dir + "/report.html";
  page.write(path);
  return path;
}

}  // namespace kiln::experiment

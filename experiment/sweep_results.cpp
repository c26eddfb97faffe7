// The sweep's table, CSV and report (experiment/sweep.hpp, Note [Beyond noise]).

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include <boost/math/distributions/students_t.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "experiment/sweep.hpp"
#include "io/atomic_file.hpp"
#include "report/html.hpp"
#include "report/svg.hpp"
#include "tensor/error.hpp"

namespace kiln::experiment {
namespace fs = std::filesystem;
namespace {

struct Stats {
  std::size_t n = 0;
  double mean = 0, sd = 0;
};

Stats stats(const std::vector<double>& v) {
  Stats s;
  s.n = v.size();
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  double ss = 0;
  for (double x : v) ss += (x - s.mean) * (x - s.mean);
  s.sd = v.size() > 1 ? std::sqrt(ss / static_cast<double>(v.size() - 1)) : 0;
  return s;
}

// Welch's t-test, two-sided: p of a difference of means at least this large if the means were equal.
// NaN when a side has fewer than two values; 1 when both sides have no spread and equal means.
double welch_p(const Stats& a, const Stats& b) {
  if (a.n < 2 || b.n < 2) return std::nan("");
  const double va = a.sd * a.sd / static_cast<double>(a.n), vb = b.sd * b.sd / static_cast<double>(b.n);
  if (va + vb == 0) return a.mean == b.mean ? 1.0 : 0.0;
  const double t = (a.mean - b.mean) / std::sqrt(va + vb);
  const double df = (va + vb) * (va + vb) / (va * va / static_cast<double>(a.n - 1) + vb * vb / static_cast<double>(b.n - 1));
  const boost::math::students_t dist(df);
  return 2 * boost::math::cdf(boost::math::complement(dist, std::abs(t)));
}

bool higher_is_better(const std::string& metric) { return metric == "accuracy" || metric == "exact_match"; }

std::string pm(const Stats& s) { return s.n == 0 ? "-" : s.n == 1 ? fmt::format("{:.4g}", s.mean) : fmt::format("{:.4g} ± {:.2g}", s.mean, s.sd); }

struct Variant {
  std::string name, reference;
  std::vector<double> metric, loss, ms;
  std::vector<std::size_t> runs;
  std::set<std::string> paths;
  std::vector<std::string> failures;
};

struct ExperimentTable {
  std::string name, metric;
  std::vector<Variant> variants;  // in grid order
  std::vector<std::string> verdict;  // per variant: "baseline", "+ better (p=...)", "- worse", "same", "-"
  std::vector<double> p;
};

std::vector<ExperimentTable> tables(const SweepPlan& plan, const std::vector<RunOutcome>& outcomes) {
  std::vector<ExperimentTable> out;
  for (const auto& [name, file] : plan.experiments) {
    ExperimentTable t;
    t.name = name;
    for (std::size_t i = 0; i < plan.runs.size(); ++i) {
      const SweepRun& r = plan.runs[i];
      if (r.experiment != name) continue;
      auto it = std::find_if(t.variants.begin(), t.variants.end(), [&](const Variant& v) { return v.name == r.variant; });
      if (it == t.variants.end()) it = t.variants.insert(t.variants.end(), Variant{r.variant, r.reference, {}, {}, {}, {}, {}, {}});
      it->runs.push_back(i);
      const RunOutcome& o = outcomes[i];
      if (o.state == RunOutcome::State::Failed) {
        it->failures.push_back(o.error);
        continue;
      }
      t.metric = o.metric;
      it->metric.push_back(o.eval_metric), it->loss.push_back(o.eval_loss), it->ms.push_back(o.ms_per_step);
      it->paths.insert(o.path);
    }
    for (const Variant& v : t.variants) {
      const auto base = std::find_if(t.variants.begin(), t.variants.end(), [&](const Variant& b) { return b.name == v.reference; });
      if (base == t.variants.end() || &v == &*base) {
        t.verdict.push_back(base == t.variants.end() ? "-" : "baseline");
        t.p.push_back(std::nan(""));
        continue;
      }
      const Stats a = stats(v.metric), b = stats(base->metric);
      const double p = welch_p(a, b);
      t.p.push_back(p);
      if (std::isnan(p)) {
        t.verdict.push_back("no test (< 2 runs)");
      } else if (p < plan.alpha) {
        const bool better = higher_is_better(t.metric) ? a.mean > b.mean : a.mean < b.mean;
        t.verdict.push_back(fmt::format("{} (p={:.2g})", better ? "+ better" : "- worse", p));
      } else {
        t.verdict.push_back(fmt::format("same (p={:.2g})", p));
      }
    }
    out.push_back(std::move(t));
  }
  return out;
}

// Text columns padded to their widest cell.
std::string text_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> w(header.size());
  auto width = [](const std::string& s) {  // UTF-8 code points
    std::size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
  };
  for (std::size_t c = 0; c < header.size(); ++c) w[c] = width(header[c]);
  for (const auto& r : rows)
    for (std::size_t c = 0; c < r.size() && c < w.size(); ++c) w[c] = std::max(w[c], width(r[c]));
  auto line = [&](const std::vector<std::string>& r) {
    std::string s;
    for (std::size_t c = 0; c < r.size(); ++c) s += r[c] + std::string(w[c] - width(r[c]) + 2, ' ');
    return s.substr(0, s.find_last_not_of(' ') + 1) + "\n";
  };
  std::string s = line(header);
  std::size_t total = 0;
  for (std::size_t c : w) total += c + 2;
  s += std::string(total - 2, '-') + "\n";
  for (const auto& r : rows) s += line(r);
  return s;
}

std::vector<std::string> header(const ExperimentTable& t) {
  return {"variant", "runs", "eval " + (t.metric.empty() ? std::string("metric") : t.metric), "eval loss", "ms/step", "path",
          "vs baseline"};
}

std::vector<std::vector<std::string>> rows(const ExperimentTable& t) {
  std::vector<std::vector<std::string>> out;
  for (std::size_t k = 0; k < t.variants.size(); ++k) {
    const Variant& v = t.variants[k];
    std::string runs = fmt::format("{}/{}", v.metric.size(), v.runs.size());
    if (!v.failures.empty()) runs += fmt::format(" ({} failed)", v.failures.size());
    std::string path;
    for (const auto& p : v.paths) path += (path.empty() ? "" : " | ") + p;
    out.push_back({v.name, runs, pm(stats(v.metric)), pm(stats(v.loss)), v.ms.empty() ? "-" : fmt::format("{:.3g}", stats(v.ms).mean),
                   path.empty() ? "-" : path, t.verdict[k]});
  }
  return out;
}

// "lstm_nig and lstm_nfg differ ... ; the others do not" for one experiment.
std::string conclusion(const SweepPlan& plan, const ExperimentTable& t) {
  std::vector<std::string> better, worse, same;
  for (std::size_t k = 0; k < t.variants.size(); ++k) {
    const std::string& v = t.verdict[k];
    if (v.rfind("+ better", 0) == 0) better.push_back(t.variants[k].name);
    else if (v.rfind("- worse", 0) == 0) worse.push_back(t.variants[k].name);
    else if (v.rfind("same", 0) == 0) same.push_back(t.variants[k].name);
  }
  auto list = [](const std::vector<std::string>& v) { return v.empty() ? std::string("none") : fmt::format("{}", fmt::join(v, ", ")); };
  return fmt::format("{}: against the baseline {} ({}; other keys equal; Welch's t-test on the final eval {}, p < {:g}): worse "
                     "beyond seed noise: {}; better: {}; not distinguishable from it: {}.", t.name, plan.baseline, plan.baseline_key,
                     t.metric, plan.alpha, list(worse), list(better), list(same));
}

void figures(report::Page& page, const SweepPlan& plan, const ExperimentTable& t) {
  // The final metric of every run per variant, and the mean eval curve per variant.
  std::vector<report::Series> curves;
  report::StripChart strip{t.name + ": final eval " + t.metric + " per variant", t.metric, {}, {}};
  for (const Variant& v : t.variants) {
    strip.categories.push_back(v.name.substr(v.name.find('=') + 1));
    strip.values.push_back(v.metric);
  }
  page.figure(report::strip_chart(strip), "Each replicate's final evaluation metric (dots), the variant's mean (bar) and +-1 standard "
                                          "deviation (line).");
  for (const Variant& v : t.variants) {
    std::map<double, std::pair<double, int>> by_step;
    for (std::size_t i : v.runs) {
      std::istringstream in([&] {
        try {
          return io::read_file(plan.runs[i].dir + "/metrics.jsonl", std::size_t{256} << 20);
        } catch (const Error&) {
          return std::string();
        }
      }());
      std::string line;
      while (std::getline(in, line)) {
        const auto j = nlohmann::json::parse(line, nullptr, false);
        if (!j.is_object() || j.value("split", "") != "eval" || !j.contains(t.metric)) continue;
        auto& [sum, n] = by_step[j.value("step", 0.0)];
        sum += j[t.metric].get<double>(), ++n;
      }
    }
    report::Series s{v.name, {}, {}};
    for (const auto& [step, sn] : by_step) s.x.push_back(step), s.y.push_back(sn.first / sn.second);
    curves.push_back(std::move(s));
  }
  page.figure(report::line_chart({t.name + ": eval " + t.metric + " over training (mean of replicates)", "training step", t.metric, curves,
                                  false}), "The mean evaluation curve of each variant.");
  // The gradient flow at the end of training: the first finished replicate of each variant, its first layer.
  std::vector<report::Series> flow;
  std::vector<std::string> links;
  for (const Variant& v : t.variants)
    for (std::size_t i : v.runs) {
      const std::string dir = plan.runs[i].dir;
      if (!fs::exists(dir + "/report.html")) continue;
      links.push_back(fmt::format("<a href=\"{}\">{}</a>", report::escape(fs::relative(dir + "/report.html", plan.output).string()),
                                  report::escape(v.name + " " + plan.replicate + "=" + plan.runs[i].replicate)));
    }
  for (const Variant& v : t.variants)
    for (std::size_t i : v.runs) {
      const auto lines = [&] {
        try {
          return io::read_file(plan.runs[i].dir + "/instruments.jsonl", std::size_t{256} << 20);
        } catch (const Error&) {
          return std::string();
        }
      }();
      const auto end = lines.find_last_of('\n', lines.size() >= 2 ? lines.size() - 2 : 0);
      const std::string last = lines.substr(end == std::string::npos ? 0 : end + 1);
      const auto j = nlohmann::json::parse(last, nullptr, false);
      if (!j.is_object() || !j.contains("layers") || j["layers"].empty() || !j["layers"][0].contains("grad_norms")) continue;
      report::Series s{v.name, {}, j["layers"][0]["grad_norms"].get<std::vector<double>>()};
      for (std::size_t k = 0; k < s.y.size(); ++k) s.x.push_back(static_cast<double>(k));
      flow.push_back(std::move(s));
      break;
    }
  if (!flow.empty())
    page.figure(report::line_chart({t.name + ": dL/dh_t at the end of training", "time step t", "||dL/dh_t||", flow, true}),
                "Gradient flow through time of each variant's first recurrent layer (its first replicate, last record; log scale).");
  if (!links.empty()) page.raw("The runs' own reports: " + fmt::format("{}", fmt::join(links, ", ")) + ".");
}

}  // namespace

std::string write_sweep_results(const SweepPlan& plan, const std::vector<RunOutcome>& outcomes) {
  KILN_CHECK(outcomes.size() == plan.runs.size(), "sweep: {} outcomes for {} runs", outcomes.size(), plan.runs.size());
  fs::create_directories(plan.output);
  const auto all = tables(plan, outcomes);
  // sweep.csv: a row per run.
  std::string csv = "experiment,variant,replicate,state,eval_loss,metric,eval_metric,ms_per_step,path,dir,error\n";
  auto quoted = [](std::string s) {
    for (std::size_t p = 0; (p = s.find('"', p)) != std::string::npos; p += 2) s.insert(p, "\"");
    return "\"" + s + "\"";
  };
  for (std::size_t i = 0; i < plan.runs.size(); ++i) {
    const SweepRun& r = plan.runs[i];
    const RunOutcome& o = outcomes[i];
    const char* state = o.state == RunOutcome::State::Failed ? "failed" : "finished";
    csv += fmt::format("{},{},{},{},{:.9g},{},{:.9g},{:.4g},{},{},{}\n", quoted(r.experiment), quoted(r.variant), quoted(r.replicate), state,
                       o.eval_loss, o.metric, o.eval_metric, o.ms_per_step, quoted(o.path), quoted(r.dir), quoted(o.error));
  }
  io::write_file_atomic(plan.output + "/sweep.csv", csv);

  std::string text;
  report::Page page("kiln sweep: " + plan.file);
  page.paragraph(fmt::format("{} runs: {} experiment(s) x {} combination(s) of the grid; output {}.", plan.runs.size(), plan.experiments.size(),
                             plan.experiments.empty() ? 0 : plan.runs.size() / plan.experiments.size(), plan.output));
  for (const ExperimentTable& t : all) {
    const auto r = rows(t);
    text += fmt::format("{} ({} from {})\n", t.name, t.metric, plan.experiments.empty() ? "" : [&] {
      for (const auto& [n, f] : plan.experiments)
        if (n == t.name) return f;
      return std::string();
    }());
    text += text_table(header(t), r) + conclusion(plan, t) + "\n\n";
    page.heading("Experiment " + t.name, "experiment-" + t.name);
    page.table(header(t), r, "sweep-" + t.name);  // "+ better" and "- worse" cells are marked (report/html.cpp)
    page.paragraph(conclusion(plan, t));
    figures(page, plan, t);
  }
  std::vector<std::vector<std::string>> failed;
  for (std::size_t i = 0; i < plan.runs.size(); ++i)
    if (outcomes[i].state == RunOutcome::State::Failed) failed.push_back({plan.runs[i].dir, outcomes[i].error});
  if (!failed.empty()) {
    page.heading("Failed runs", "failed");
    page.table({"run", "error"}, failed, "failed");
    text += fmt::format("{} run(s) failed; see sweep.csv and each run's train.log\n", failed.size());
  }
  page.heading("Sweep file", "sweep-file");
  page.pre(io::read_file(plan.file, std::size_t{16} << 20));
  page.write(plan.output + "/report.html");
  io::write_file_atomic(plan.output + "/summary.txt", text);
  return text;
}

}  // namespace kiln::experiment

// kiln gradcheck: runs the gradient-check table of every generic op and prints one row per case.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/commands.hpp"
#include "ops/op_checks.hpp"

namespace kiln::cli {
namespace {

struct GradcheckArgs {
  std::string filter;
  bool failures_only = false;
};

int run(const GradcheckArgs& args) {
  if (!args.filter.empty()) {
    std::vector<std::string> ops;
    for (const OpCheck& check : op_checks())
      if (std::find(ops.begin(), ops.end(), check.op) == ops.end()) ops.push_back(check.op);
    const bool any = std::any_of(ops.begin(), ops.end(), [&](const std::string& op) { return op.find(args.filter) != std::string::npos; });
    KILN_CHECK(any, "gradcheck: no op's name contains '{}'; the ops: {}", args.filter, fmt::join(ops, ", "));
  }
  fmt::print("{:<22} {:<28} {:>8} {:>12}  {}\n", "op", "case", "elements", "max |error|", "result");
  int passed = 0, failed = 0;
  double worst = 0;
  for (const OpCheck& check : op_checks()) {
    if (!args.filter.empty() && check.op.find(args.filter) == std::string::npos) continue;
    const GradcheckResult r = run_op_check(check);
    (r.ok ? passed : failed)++;
    worst = std::max(worst, std::isnan(r.max_abs_error) ? INFINITY : r.max_abs_error);
    if (args.failures_only && r.ok) continue;
    fmt::print("{:<22} {:<28} {:>8} {:>12.2e}  {}\n", check.op, check.name, r.checked, r.max_abs_error,
               r.ok ? "ok" : "FAILED: " + r.message);
  }
  fmt::print("{} of {} cases pass (float64 central differences, rtol 1e-6); worst |error| {:.2e}\n", passed,
             passed + failed, worst);
  return failed == 0 ? 0 : 1;
}

}  // namespace

void add_gradcheck_command(CLI::App& app) {
  auto args = std::make_shared<GradcheckArgs>();
  CLI::App* cmd = app.add_subcommand("gradcheck", "Check every generic op's backward against finite differences");
  cmd->add_option("--op", args->filter, "Only ops whose name contains this text");
  cmd->add_flag("--failures", args->failures_only, "Print only failing cases");
  cmd->callback([args] {
    if (const int rc = run(*args); rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace kiln::cli

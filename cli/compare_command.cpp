// kiln compare CASE.safetensors: runs a PyTorch reference case on Kiln and prints, for every output
// and gradient, the max absolute and relative error against the reference.

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "interop/reference_case.hpp"
#include "io/safetensors.hpp"

namespace kiln::cli {
namespace {

struct CompareArgs {
  std::vector<std::string> cases;
  std::string dtype = "float64";
  std::string impl = "auto";
  std::string out;
};

int run(const CompareArgs& a) {
  KILN_CHECK(a.dtype == "float32" || a.dtype == "float64", "compare: --dtype must be float32 or float64, got '{}'",
             a.dtype);
  KILN_CHECK(a.out.empty() || a.cases.size() == 1, "compare: --out takes exactly one case, got {}", a.cases.size());
  const DType dtype = a.dtype == "float64" ? kFloat64 : kFloat32;
  bool all_ok = true;
  for (const std::string& path : a.cases) {
    const interop::CaseReport r = interop::run_reference_case(path, dtype, a.impl);
    fmt::print("{}\n  {} in {}\n", path, r.module, a.dtype);
    fmt::print("  {:<34} {:<14} {:>12} {:>12}\n", "tensor", "shape", "max abs err", "max rel err");
    int good = 0;
    for (const auto& row : r.rows) {
      good += row.ok;
      if (!row.problem.empty())
        fmt::print("  {:<34} {:<14} {}  MISMATCH\n", row.name, row.shape.str(), row.problem);
      else
        fmt::print("  {:<34} {:<14} {:>12.2e} {:>12.2e}{}\n", row.name, row.shape.str(), row.max_abs_error,
                   row.max_rel_error, row.ok ? "" : "  MISMATCH");
    }
    fmt::print("  {} of {} tensors match (tolerance {:g} relative)\n\n", good, r.rows.size(), r.tolerance);
    all_ok = all_ok && r.ok();
    if (!a.out.empty()) {
      io::save_safetensors(a.out, r.kiln, {{"source", path}, {"dtype", a.dtype}});
      fmt::print("Kiln's outputs and gradients written to {}\n", a.out);
    }
  }
  return all_ok ? 0 : 1;
}

}  // namespace

void add_compare_command(CLI::App& app) {
  auto a = std::make_shared<CompareArgs>();
  CLI::App* cmd = app.add_subcommand("compare", "Run PyTorch reference cases and compare every output and gradient");
  cmd->add_option("cases", a->cases, "Reference case files (.safetensors)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--dtype", a->dtype, "float32 or float64")->capture_default_str();
  cmd->add_option("--impl", a->impl, "generic, fused, compiled or auto: which implementation runs the layer")
      ->capture_default_str()
      ->check(CLI::IsMember({"generic", "fused", "compiled", "auto"}));
  cmd->add_option("--out", a->out, "Write Kiln's outputs and gradients under the same names");
  cmd->callback([a] {
    if (const int rc = run(*a); rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace kiln::cli

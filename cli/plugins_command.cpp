// kiln plugins: lists the registered cells and fused kernels (and loads more with --load).
// kiln check-plugin NAME|PATH.so|all: proves kernels equal to their cells (fusion/check_plugin.hpp).

#include <algorithm>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "layers/cell_registry.hpp"
#include "fusion/check_plugin.hpp"
#include "fusion/compiled_kernel.hpp"
#include "fusion/kernel_choice.hpp"
#include "plugins/registry.hpp"

namespace kiln::cli {
namespace {

void load_all(const std::vector<std::string>& paths) {
  for (const auto& p : paths) plugins::load_plugin(p);
  nn::CellRegistry::global();  // registers the libraries' cells now: a refused one is an error here
}

bool is_library(const std::string& s) {
  return s.find('/') != std::string::npos || (s.size() > 3 && s.compare(s.size() - 3, 3, ".so") == 0);
}

// Prints rows as columns as wide as their widest entry, two spaces apart; the last column runs on.
void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& r : rows)
    for (std::size_t i = 0; i + 1 < r.size(); ++i) {
      if (width.size() <= i) width.resize(i + 1, 0);
      width[i] = std::max(width[i], r[i].size());
    }
  for (const auto& r : rows) {
    std::string line = " ";
    for (std::size_t i = 0; i < r.size(); ++i) line += " " + (i + 1 < r.size() ? fmt::format("{:<{}}", r[i], width[i]) + " " : r[i]);
    fmt::print("{}\n", line);
  }
}

std::string claimed_by(const std::string& kernel) {
  return nn::CellRegistry::global().get(kernel) != nullptr ? kernel : "(none registered)";
}

}  // namespace

// kiln plugins --program CELL: the cell's step as the compiler sees it (Note [Cell programs]): its
// projections, its program, and what a row keeps per step.
void print_program(const std::string& name, std::int64_t input, std::int64_t hidden) {
  const plugins::CellMaker make = plugins::reference_cell(name);
  KILN_CHECK(make != nullptr, "plugins --program: '{}' is not a registered cell (`kiln plugins` lists them)", name);
  const auto cell = make(input, hidden, true);
  const plugins::CellProgram p = plugins::compile_cell(*cell);
  KILN_CHECK(p.ok(), "plugins --program {}: {} does not compile: {}", name, cell->class_name(), p.stopped);
  fmt::print("{} ({}), input {}, hidden {}: {} traced ops -> {} projections, {} program instructions in {} stage(s)\n", name,
             p.cell, input, hidden, p.ops, p.projections.size(), p.code.size(), p.stages);
  for (const auto& pr : p.projections)
    fmt::print("  projection {}[{}:{}] of {}{}\n", pr.weight, pr.row0, pr.row0 + pr.rows,
               pr.source == -1 ? std::string("x (one GEMM over all steps)") : pr.source >= 0 ? fmt::format("state{} (one GEMM per step)", pr.source)
                                                                                            : fmt::format("r{} (late: between stages)", pr.source_reg),
               pr.bias.empty() ? "" : fmt::format(" + {}[{}:{}]", pr.bias, pr.bias0, pr.bias0 + pr.rows));
  fmt::print("{}", p.listing());
  const auto per_h = [&](std::int64_t v) { return fmt::format("{} values ({:.3g} H)", v, static_cast<double>(v) / static_cast<double>(hidden)); };
  fmt::print("a row keeps per step for backward: {}; scratch: {}; gradients while running backward: {}; shared: {}\n",
             per_h(p.row_size), per_h(p.scratch_size), per_h(p.grad_size), p.shared_size);
}

void add_plugins_command(CLI::App& app) {
  auto loads = std::make_shared<std::vector<std::string>>();
  auto program = std::make_shared<std::string>();
  auto sizes = std::make_shared<std::pair<std::int64_t, std::int64_t>>(3, 4);
  CLI::App* cmd = app.add_subcommand("plugins", "List the registered cells and fused kernels");
  cmd->add_option("--load", *loads, "Load plugin shared libraries first")->check(CLI::ExistingFile);
  cmd->add_option("--program", *program, "Print a registered cell's compiled step instead: projections, program, what a row keeps");
  cmd->add_option("--input", sizes->first, "Input size for --program")->capture_default_str()->check(CLI::Range(1, 4096));
  cmd->add_option("--hidden", sizes->second, "Hidden size for --program")->capture_default_str()->check(CLI::Range(1, 4096));
  cmd->callback([loads, program, sizes] {
    load_all(*loads);
    if (!program->empty()) {
      print_program(*program, sizes->first, sizes->second);
      return;
    }
    const auto cells = nn::CellRegistry::global().cells();
    fmt::print("{} cell(s) registered\n", cells.size());
    std::vector<std::vector<std::string>> rows{{"cell", "gates", "states", "fused kernel", "from", "math"}};
    std::vector<std::string> uncompiled;
    for (const auto* c : cells) {
      const bool kernel = plugins::Registry::global().get(c->name) != nullptr;
      std::string fused = kernel ? c->name : "-";
      if (!kernel) {  // what a layer of it runs: a kernel the graph pass finds, else its step compiled (Note [Kernel claims])
        try {
          const plugins::CellMaker make = plugins::reference_cell(c->name);
          const auto cell = make(3, 4, true);
          const plugins::KernelChoice choice = plugins::choose_kernel(*cell, plugins::Registry::global(), make);
          if (choice.kernel == nullptr) uncompiled.push_back(fmt::format("{}: {}", c->name, plugins::compile_cell(*cell).stopped));
          else fused = choice.kernel->in_process ? "compiled" : choice.kernel->name + " (graph pass)";
        } catch (const std::exception& e) {
          uncompiled.push_back(fmt::format("{}: {}", c->name, e.what()));
        }
      }
      rows.push_back({c->name, c->gates > 0 ? std::to_string(c->gates) : "-", std::to_string(c->states), fused, c->origin, c->description});
    }
    print_table(rows);
    fmt::print("A cell without a hand-written kernel runs its step compiled (impl auto or fused; proven against its generic\n"
               "graph at first use; `kiln check-plugin compiled` proves them all).\n");
    if (!uncompiled.empty()) fmt::print("Not compiled yet (the generic graph runs them):\n");
    for (const auto& u : uncompiled) fmt::print("  {}\n", u);
    const auto kernels = plugins::Registry::global().kernels();
    fmt::print("\n{} fused kernel(s) registered\n", kernels.size());
    rows = {{"kernel", "plugin", "equals cell", "from", "runs"}};
    for (const auto* k : kernels) rows.push_back({k->name, k->plugin, claimed_by(k->name), k->origin, k->description});
    print_table(rows);
    fmt::print("A layer runs a kernel when its cell's class claims it, when a subclass's claim is confirmed numerically, or\n"
               "when the graph pass finds it (impl auto or fused); `kiln check-plugin all` proves every kernel.\n");
    const auto attention = plugins::Registry::global().attention_kernels();
    fmt::print("\n{} attention kernel(s) registered\n", attention.size());
    rows = {{"kernel", "plugin", "from", "runs"}};
    for (const auto* k : attention) rows.push_back({k->name, k->plugin, k->origin, k->description});
    if (!attention.empty()) print_table(rows);
    if (!attention.empty()) fmt::print("MultiheadAttention runs 'sdpa' (impl auto or fused) when its weights are not needed with gradients.\n");
  });
}

void add_check_plugin_command(CLI::App& app) {
  struct Args {
    std::vector<std::string> targets;
    std::vector<std::string> loads;
    std::uint64_t seed = 0;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("check-plugin", "Check fused kernels against the cells they claim to equal: outputs, "
                                     "final states and every gradient over a grid of shapes and options");
  cmd->add_option("targets", a->targets,
                  "Kernel names (e.g. lstm), plugin libraries (PATH.so: every kernel in it), 'all', compiled:CELL (a "
                  "registered cell's compiled step), or 'compiled' (every registered cell that compiles)")
      ->required();
  cmd->add_option("--load", a->loads, "Load plugin libraries first (cells a kernel is checked against, say)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--seed", a->seed, "Seed for the random inputs")->capture_default_str()->check(seed_check());
  cmd->callback([a] {
    load_all(a->loads);
    std::vector<const plugins::Kernel*> kernels;
    std::vector<const plugins::AttentionKernel*> attention;
    std::vector<std::pair<std::shared_ptr<const plugins::Kernel>, plugins::CellMaker>> compiled;
    auto& registry = plugins::Registry::global();
    auto compile = [&](const std::string& cell, bool required) {
      const plugins::CellMaker make = plugins::reference_cell(cell);
      KILN_CHECK(static_cast<bool>(make), "check-plugin: no cell named '{}' is registered (see `kiln plugins`)", cell);
      std::string why;
      auto k = plugins::compiled_kernel(cell, make, &why);
      KILN_CHECK(k != nullptr || !required, "check-plugin compiled:{}: {}", cell, why);
      if (k) compiled.emplace_back(k, make);
    };
    auto add = [](auto& list, const auto* k) {
      if (std::find(list.begin(), list.end(), k) == list.end()) list.push_back(k);
    };
    for (const auto& t : a->targets) {
      if (t == "compiled") {
        for (const auto* c : nn::CellRegistry::global().cells()) compile(c->name, false);
      } else if (t.rfind("compiled:", 0) == 0) {
        compile(t.substr(9), true);
      } else if (t == "all") {
        for (const auto* k : registry.kernels()) add(kernels, k);
        for (const auto* k : registry.attention_kernels()) add(attention, k);
      } else if (is_library(t)) {
        const auto before = registry.kernels();
        const auto before_attention = registry.attention_kernels();
        load_all({t});
        for (const auto* k : registry.kernels())
          if (std::find(before.begin(), before.end(), k) == before.end()) add(kernels, k);
        for (const auto* k : registry.attention_kernels())
          if (std::find(before_attention.begin(), before_attention.end(), k) == before_attention.end()) add(attention, k);
      } else if (const plugins::AttentionKernel* k = registry.attention(t)) {
        add(attention, k);
      } else {
        const plugins::Kernel* r = registry.get(t);
        KILN_CHECK(r != nullptr, "check-plugin: no kernel named '{}' is registered (see `kiln plugins`)", t);
        add(kernels, r);
      }
    }
    plugins::CheckOptions options;
    options.seed = a->seed;
    // Every kernel is checked, whatever happens to the others; the summary says what each came to.
    std::vector<std::vector<std::string>> summary{{"kernel", "plugin", "result"}};
    int failed = 0;
    auto run = [&](const std::string& name, const std::string& plugin, auto&& check) {
      std::string result;
      try {
        const plugins::CheckReport report = check();
        fmt::print("{}\n", report.to_string());
        result = report.passed() ? fmt::format("PASS ({} cases)", report.cases) : "FAIL: " + report.first_failure();
      } catch (const std::exception& e) {
        fmt::print("check_plugin: kernel '{}' from plugin '{}': ERROR: {}\n\n", name, plugin, e.what());
        result = std::string("ERROR: ") + e.what();
      }
      failed += result.rfind("PASS", 0) != 0;
      summary.push_back({name, plugin, result});
    };
    for (const auto* k : kernels) run(k->name, k->plugin, [&] { return plugins::check_plugin(*k, options); });
    for (const auto* k : attention) run(k->name, k->plugin, [&] { return plugins::check_attention_plugin(*k, options); });
    for (const auto& [k, make] : compiled) run(k->name, k->plugin, [&, &k = k, &make = make] { return plugins::check_plugin(*k, options, make); });
    const std::size_t total = kernels.size() + attention.size() + compiled.size();
    fmt::print("Summary\n");
    print_table(summary);
    fmt::print("{} of {} kernel(s) match the generic graph\n", total - static_cast<std::size_t>(failed), total);
    if (failed != 0) throw CLI::RuntimeError(1);
  });
}

}  // namespace kiln::cli

// kiln plugins: lists the registered fused kernels (and loads more with --load).
// kiln check-plugin NAME|PATH.so: proves kernels equal to their generic cells (plugins/check_plugin.hpp).

#include <algorithm>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "plugins/check_plugin.hpp"
#include "plugins/registry.hpp"

namespace kiln::cli {
namespace {

void load_all(const std::vector<std::string>& paths) {
  for (const auto& p : paths) plugins::load_plugin(p);
}

bool is_library(const std::string& s) {
  return s.find('/') != std::string::npos || (s.size() > 3 && s.compare(s.size() - 3, 3, ".so") == 0);
}

}  // namespace

void add_plugins_command(CLI::App& app) {
  auto loads = std::make_shared<std::vector<std::string>>();
  CLI::App* cmd = app.add_subcommand("plugins", "List the registered fused kernels");
  cmd->add_option("--load", *loads, "Load plugin shared libraries first")->check(CLI::ExistingFile);
  cmd->callback([loads] {
    load_all(*loads);
    const auto kernels = plugins::Registry::global().kernels();
    fmt::print("{} fused kernel(s) registered\n", kernels.size());
    fmt::print("  {:<18} {:<12} {}\n", "kernel", "plugin", "runs");
    for (const auto* k : kernels) fmt::print("  {:<18} {:<12} {}\n", k->name, k->plugin, k->description);
    fmt::print("Layers run a kernel when their cell's kernel_name() matches (impl auto or fused).\n");
    const auto attention = plugins::Registry::global().attention_kernels();
    fmt::print("{} attention kernel(s) registered\n", attention.size());
    for (const auto* k : attention) fmt::print("  {:<18} {:<12} {}\n", k->name, k->plugin, k->description);
    if (!attention.empty()) fmt::print("MultiheadAttention runs 'sdpa' (impl auto or fused) when its weights are not needed with gradients.\n");
  });
}

void add_check_plugin_command(CLI::App& app) {
  struct Args {
    std::vector<std::string> targets;
    std::uint64_t seed = 0;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("check-plugin", "Check fused kernels against their generic cells: outputs, "
                                     "final states and every gradient over a grid of shapes and options");
  cmd->add_option("targets", a->targets,
                  "Kernel names (e.g. lstm), plugin libraries (PATH.so: every kernel in it), or 'all'")
      ->required();
  cmd->add_option("--seed", a->seed, "Seed for the random inputs")->capture_default_str();
  cmd->callback([a] {
    std::vector<const plugins::Kernel*> kernels;
    std::vector<const plugins::AttentionKernel*> attention;
    auto& registry = plugins::Registry::global();
    for (const auto& t : a->targets) {
      if (t == "all") {
        for (const auto* k : registry.kernels()) kernels.push_back(k);
        for (const auto* k : registry.attention_kernels()) attention.push_back(k);
      } else if (is_library(t)) {
        const auto before = registry.kernels();
        const auto before_attention = registry.attention_kernels();
        plugins::load_plugin(t);
        for (const auto* k : registry.kernels())
          if (std::find(before.begin(), before.end(), k) == before.end()) kernels.push_back(k);
        for (const auto* k : registry.attention_kernels())
          if (std::find(before_attention.begin(), before_attention.end(), k) == before_attention.end()) attention.push_back(k);
      } else if (const plugins::AttentionKernel* k = registry.attention(t)) {
        attention.push_back(k);
      } else {
        const plugins::Kernel* r = registry.get(t);
        KILN_CHECK(r != nullptr, "check-plugin: no kernel named '{}' is registered (see `kiln plugins`)", t);
        kernels.push_back(r);
      }
    }
    plugins::CheckOptions options;
    options.seed = a->seed;
    int failed = 0;
    for (const auto* k : kernels) {
      const auto report = plugins::check_plugin(*k, options);
      fmt::print("{}\n", report.to_string());
      failed += !report.passed();
    }
    for (const auto* k : attention) {
      const auto report = plugins::check_attention_plugin(*k, options);
      fmt::print("{}\n", report.to_string());
      failed += !report.passed();
    }
    const std::size_t total = kernels.size() + attention.size();
    fmt::print("{} of {} kernel(s) match the generic graph\n", total - failed, total);
    if (failed != 0) throw CLI::RuntimeError(1);
  });
}

}  // namespace kiln::cli

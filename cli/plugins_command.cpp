// kiln plugins: lists the fused kernels in the registry and what each supports.

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "plugins/registry.hpp"

namespace kiln::cli {

void add_plugins_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("plugins", "List the registered fused kernels");
  cmd->callback([] {
    const auto kernels = plugins::Registry::global().kernels();
    fmt::print("{} fused kernel(s) registered\n", kernels.size());
    for (const auto* k : kernels) fmt::print("  {:<10} {:<10} {}\n", k->name, k->plugin, k->description);
  });
}

}  // namespace kiln::cli

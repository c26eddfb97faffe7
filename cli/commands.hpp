#pragma once
// The subcommands of the `kiln` program; each registers itself on the CLI11 app.

#include <CLI/CLI.hpp>

namespace kiln::cli {

void add_demo_command(CLI::App& app);
void add_gradcheck_command(CLI::App& app);
void add_compare_command(CLI::App& app);
void add_plugins_command(CLI::App& app);
void add_check_plugin_command(CLI::App& app);
void add_bench_command(CLI::App& app);

/// "OpenBLAS SkylakeX, 1 thread(s)": printed by every command that measures or trains.
std::string machine_line();

}  // namespace kiln::cli

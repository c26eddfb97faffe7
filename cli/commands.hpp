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
void add_train_command(CLI::App& app);
void add_summary_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_graph_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_sweep_command(CLI::App& app);
void add_bench_dist_command(CLI::App& app);

/// Refuses a negative --seed, which CLI11 would wrap to 2^64 - 1.
inline CLI::Validator seed_check() {
  return CLI::Validator(
      [](std::string& v) { return v.find('-') == std::string::npos ? std::string() : "a seed is a whole number from 0, not " + v; },
      "SEED");
}

/// "OpenBLAS SkylakeX, 1 thread(s)": printed by every command that measures or trains.
std::string machine_line();

}  // namespace kiln::cli

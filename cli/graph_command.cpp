// kiln graph CONFIG [--out FILE]: the graph of one training step of an experiment as Graphviz DOT, each
// time step of a recurrent layer in a box; an SVG beside it when Graphviz's `dot` is installed.

#include <cstdlib>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "experiment/trainer.hpp"
#include "io/atomic_file.hpp"

namespace kiln::cli {

void add_graph_command(CLI::App& app) {
  auto config = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>("graph.dot");
  auto set = std::make_shared<std::vector<std::string>>();
  CLI::App* cmd = app.add_subcommand("graph", "Write the graph of one training step of an experiment file (DOT, and SVG "
                                              "with Graphviz)");
  cmd->add_option("config", *config, "The experiment file (.yaml)")->required();
  cmd->add_option("--out", *out, "The DOT file to write")->capture_default_str();
  cmd->add_option("--set", *set, "Override a key of the file (repeatable); e.g. --set model[0].recurrent.impl=generic "
                                 "to see each step of a fused layer");
  cmd->callback([config, out, set] {
    const std::string dot = experiment::training_step_dot(experiment::read_experiment(*config, *set));
    io::write_file_atomic(*out, dot);
    fmt::print("graph of one training step: {}\n", *out);
    if (std::system("command -v dot > /dev/null 2>&1") == 0) {
      const std::string svg = out->substr(0, out->rfind('.')) + ".svg";
      const std::string command = fmt::format("dot -Tsvg '{}' -o '{}'", *out, svg);
      if (out->find('\'') == std::string::npos && std::system(command.c_str()) == 0) fmt::print("rendered: {}\n", svg);
    } else {
      fmt::print("(install graphviz for an SVG: dot -Tsvg {} -o graph.svg)\n", *out);
    }
  });
}

}  // namespace kiln::cli

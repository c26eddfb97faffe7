// kiln eval RUN_DIR: a run's model on its task's evaluation batches. kiln generate RUN_DIR: text sampled
// from a character model's run.

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "experiment/trainer.hpp"

namespace kiln::cli {

void add_eval_command(CLI::App& app) {
  auto dir = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("eval", "Evaluate a run's model (its final weights, else its newest checkpoint)");
  cmd->add_option("run", *dir, "The run folder (kiln train's output)")->required();
  cmd->callback([dir] {
    const experiment::EvalResult r = experiment::evaluate_run(*dir);
    fmt::print("{} (step {}): eval loss {:.4g}, {} {:.4g}\n", r.weights, r.step, r.loss, r.metric_name, r.metric);
  });
}

void add_generate_command(CLI::App& app) {
  auto dir = std::make_shared<std::string>();
  auto o = std::make_shared<experiment::GenerateOptions>();
  CLI::App* cmd = app.add_subcommand("generate", "Sample text from a character model's run");
  cmd->add_option("run", *dir, "The run folder of a char_lm experiment")->required();
  cmd->add_option("--prime", o->prime, "The text to start from");
  cmd->add_option("--length", o->length, "Characters to generate")->capture_default_str()->check(CLI::Range(0, 1000000));
  cmd->add_option("--temperature", o->temperature, "Below 1: safer; above 1: wilder")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed of the sampling")->capture_default_str()->check(seed_check());
  cmd->callback([dir, o] { fmt::print("{}{}\n", o->prime, experiment::generate_text(*dir, *o)); });
}

}  // namespace kiln::cli

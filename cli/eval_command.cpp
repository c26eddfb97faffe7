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
  CLI::App* cmd = app.add_subcommand("generate", "Sample text from a language model's run, or translate with a seq2seq run "
                                                 "(greedy or beam search)");
  cmd->add_option("run", *dir, "The run folder of a char_lm, word_lm or seq2seq experiment")->required();
  cmd->add_option("--prime", o->prime, "Language models: the text to start from");
  cmd->add_option("--length", o->length, "Language models: tokens to generate")->capture_default_str()->check(CLI::Range(0, 1000000));
  cmd->add_option("--temperature", o->temperature, "Language models: below 1 safer, above 1 wilder")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Language models: seed of the sampling")->capture_default_str()->check(seed_check());
  cmd->add_option("--input", o->inputs, "Seq2seq: a source to translate (repeatable; none: the first evaluation examples)");
  cmd->add_option("--beam", o->beam, "Seq2seq: beam width (1: greedy search)")->capture_default_str()->check(CLI::Range(1, 1000));
  cmd->add_option("--length-penalty", o->length_penalty, "Seq2seq: alpha in log p / length^alpha")->capture_default_str();
  cmd->callback([dir, o] { fmt::print("{}", experiment::generate_text(*dir, *o)); });
}

}  // namespace kiln::cli

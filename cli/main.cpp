// kiln: the command-line program. `kiln --help` lists the subcommands.

#include <exception>
#include <iostream>
#include <new>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/commands.hpp"
#include "dist/dist.hpp"
#include "ops/gemm.hpp"
#include "tensor/error.hpp"
#include "tensor/parallel.hpp"

namespace kiln::cli {

std::string machine_line() {
  return fmt::format("OpenBLAS core {}, {} thread(s)", blas::core_name(), kiln::num_threads());
}

}  // namespace kiln::cli

namespace {

// An error ends this process; under mpirun it ends the whole job (every rank), naming this rank.
int fail(const std::string& message) {
  if (kiln::dist::distributed())
    kiln::dist::abort(fmt::format("kiln: error on rank {} of {}: {}", kiln::dist::rank(), kiln::dist::world_size(), message), 1);
  std::cerr << "kiln: error: " << message << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  kiln::dist::init();  // Note [Launched or alone]: MPI only when mpirun started this process
  CLI::App app{"Kiln: sequence models on a tape-based autograd, with fused kernels as plugins"};
  app.require_subcommand(1);
  // A word that is no subcommand is named, not reported as a missing subcommand.
  app.allow_extras(false);
  app.set_version_flag("--version", "kiln 0.1.0");
  kiln::cli::add_demo_command(app);
  kiln::cli::add_gradcheck_command(app);
  kiln::cli::add_compare_command(app);
  kiln::cli::add_plugins_command(app);
  kiln::cli::add_check_plugin_command(app);
  kiln::cli::add_bench_command(app);
  kiln::cli::add_train_command(app);
  kiln::cli::add_summary_command(app);
  kiln::cli::add_eval_command(app);
  kiln::cli::add_graph_command(app);
  kiln::cli::add_generate_command(app);
  kiln::cli::add_sweep_command(app);
  kiln::cli::add_bench_dist_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (argc > 1 && argv[1][0] != '-' && app.get_subcommands().empty() && e.get_exit_code() != 0) {
      std::vector<std::string> names;
      for (const CLI::App* sub : app.get_subcommands({})) names.push_back(sub->get_name());
      std::cerr << "kiln: error: no command '" << argv[1] << "'; the commands: " << fmt::format("{}", fmt::join(names, ", "))
                << " (kiln --help)\n";
      return 2;
    }
    return app.exit(e);
  } catch (const kiln::Error& e) {
    return fail(e.what());
  } catch (const std::bad_alloc&) {
    return fail("out of memory (a size asked for more memory than this machine can give)");
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  return 0;
}
